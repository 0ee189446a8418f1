/**
 * A container's combined stdout+stderr in a file written with O_APPEND by a process that outlives
 * the agent; rotation is copy-truncate (`output.log` → `output.log.1` → … → dropped) so the writer
 * never needs to reopen. Lines written between the copy and the truncate can be lost: the price of
 * not owning the writer.
 */
import { createReadStream, promises as fs } from 'node:fs';
import type { ContainerLogReader } from './container-runtime';

export interface RotationOptions {
  /** Rotate once the live file is larger than this. */
  maxBytes: number;
  /** Files kept in total, the live one included (3 → output.log, .1, .2). */
  files: number;
  /** How often `follow` looks for new data. */
  pollMs?: number;
}

export const DEFAULT_ROTATION: RotationOptions = { maxBytes: 10 * 1024 * 1024, files: 3, pollMs: 200 };

export class RotatingLogFile implements ContainerLogReader {
  constructor(
    readonly path: string,
    readonly opts: RotationOptions = DEFAULT_ROTATION,
  ) {
    if (opts.files < 1 || opts.maxBytes < 1) throw new Error('rotation needs files ≥ 1 and maxBytes ≥ 1');
  }

  /** Rotates when the live file exceeds maxBytes; returns whether it did. */
  async rotateIfNeeded(): Promise<boolean> {
    const size = await fileSize(this.path);
    if (size === null || size <= this.opts.maxBytes) return false;
    if (this.opts.files === 1) {
      await fs.truncate(this.path, 0);
      return true;
    }
    for (let i = this.opts.files - 1; i >= 1; i--) {
      const from = i === 1 ? this.path : `${this.path}.${i - 1}`;
      const to = `${this.path}.${i}`;
      if (i === 1) await fs.copyFile(from, to);
      else await fs.rename(from, to).catch(ignoreMissing);
    }
    await fs.truncate(this.path, 0);
    return true;
  }

  async tail(n: number): Promise<string[]> {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`tail(n): n must be a non-negative integer, got ${n}`);
    let lines: string[] = [];
    for (let i = 0; i < this.opts.files && lines.length < n; i++) {
      const file = i === 0 ? this.path : `${this.path}.${i}`;
      const text = await fs.readFile(file, 'utf8').catch((e) => (isMissing(e) ? null : Promise.reject(e)));
      if (text === null) continue;
      const own = splitLines(text);
      lines = [...own, ...lines];
    }
    return n === 0 ? [] : lines.slice(-n);
  }

  /**
   * Yields lines appended to the live file from now on (or from its start), until `signal` aborts.
   *
   * Rotation is detected by the identity of `<path>.1`, not by the live file shrinking: a
   * copy-truncate followed by more output than the follower had read before the next poll leaves
   * the live file larger than its offset, and a size check would then read from the middle of new
   * lines. When `.1` is a new file (a rotation happened since the last look), the follower first
   * reads the rest of what it had not read from `.1` (the live file's content at the copy), then
   * continues at the start of the live file. With `files: 1` (truncate only) or more than one
   * rotation between two looks, a shrink below the offset is the only sign left and the lines in
   * between are lost (docs: the price of not owning the writer).
   *
   * `wait` replaces the poll delay (tests drive it explicitly instead of racing a timer).
   */
  async *follow(signal: AbortSignal, opts: { fromStart?: boolean; wait?: (signal: AbortSignal) => Promise<void> } = {}): AsyncIterable<string> {
    const pollMs = this.opts.pollMs ?? 200;
    const wait = opts.wait ?? ((s: AbortSignal) => abortableDelay(pollMs, s));
    const rotated = `${this.path}.1`;
    let rotatedId = this.opts.files > 1 ? await fileIdentity(rotated) : null;
    let pos = opts.fromStart ? 0 : ((await fileSize(this.path)) ?? 0);
    let partial = '';
    const lines = function* (chunk: string) {
      const parts = (partial + chunk).split('\n');
      partial = parts.pop() ?? '';
      yield* parts;
    };
    while (!signal.aborted) {
      if (this.opts.files > 1) {
        const id = await fileIdentity(rotated);
        if (id !== null && id !== rotatedId) {
          // Rotated since the last look: what we had not read yet was copied into `.1`.
          rotatedId = id;
          const size = (await fileSize(rotated)) ?? 0;
          if (size > pos) yield* lines(await readRange(rotated, pos, size));
          // A partial last line stays partial: the writer may finish it in the truncated live file.
          pos = 0;
        }
      }
      const size = (await fileSize(this.path)) ?? 0;
      if (size < pos) {
        pos = 0; // truncated without a new `.1` (files: 1, or rotations we could not follow)
        partial = '';
      }
      if (size > pos) {
        const chunk = await readRange(this.path, pos, size);
        pos = size;
        yield* lines(chunk);
        continue;
      }
      await wait(signal);
    }
  }
}

function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

async function readRange(path: string, start: number, endExclusive: number): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of createReadStream(path, { start, end: endExclusive - 1 })) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** `dev:ino:birth` of a file, or null when it does not exist: a new file under the same name differs. */
async function fileIdentity(path: string): Promise<string | null> {
  try {
    const st = await fs.stat(path, { bigint: true });
    return `${st.dev}:${st.ino}:${st.birthtimeNs || st.ctimeNs}`;
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  }
}

async function fileSize(path: string): Promise<number | null> {
  try {
    return (await fs.stat(path)).size;
  } catch (e) {
    if (isMissing(e)) return null;
    throw e;
  }
}

function isMissing(e: unknown): boolean {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT';
}
function ignoreMissing(e: unknown): void {
  if (!isMissing(e)) throw e;
}

function abortableDelay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
