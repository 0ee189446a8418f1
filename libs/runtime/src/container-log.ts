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

  async *follow(signal: AbortSignal, opts: { fromStart?: boolean } = {}): AsyncIterable<string> {
    let pos = opts.fromStart ? 0 : ((await fileSize(this.path)) ?? 0);
    let partial = '';
    const pollMs = this.opts.pollMs ?? 200;
    while (!signal.aborted) {
      const size = (await fileSize(this.path)) ?? 0;
      if (size < pos) {
        pos = 0; // truncated by rotation: the new data starts at 0
        partial = '';
      }
      if (size > pos) {
        const chunk = await readRange(this.path, pos, size);
        pos = size;
        const text = partial + chunk;
        const parts = text.split('\n');
        partial = parts.pop() ?? '';
        for (const line of parts) yield line;
        continue;
      }
      await abortableDelay(pollMs, signal);
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
