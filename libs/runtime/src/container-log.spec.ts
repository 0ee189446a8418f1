import { appendFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RotatingLogFile } from './container-log';

describe('RotatingLogFile', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'berth-log-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('rotates by size with copy-truncate, keeping `files` files in total', async () => {
    const path = join(dir, 'output.log');
    const log = new RotatingLogFile(path, { maxBytes: 10, files: 3 });
    writeFileSync(path, 'a1\na2\na3\na4\n');
    expect(await log.rotateIfNeeded()).toBe(true);
    expect(readFileSync(path, 'utf8')).toBe('');
    appendFileSync(path, 'b1\nb2\nb3\nb4\n');
    await log.rotateIfNeeded();
    appendFileSync(path, 'c1\nc2\nc3\nc4\n');
    await log.rotateIfNeeded();
    appendFileSync(path, 'd1\n');
    expect(await log.rotateIfNeeded()).toBe(false);
    expect(readFileSync(`${path}.1`, 'utf8')).toBe('c1\nc2\nc3\nc4\n');
    expect(readFileSync(`${path}.2`, 'utf8')).toBe('b1\nb2\nb3\nb4\n');
    // tail spans rotated files, oldest first; the a* generation was dropped
    expect(await log.tail(6)).toEqual(['b4', 'c1', 'c2', 'c3', 'c4', 'd1']);
    expect(await log.tail(100)).toHaveLength(9);
    expect(await log.tail(0)).toEqual([]);
    await expect(log.tail(-1)).rejects.toThrow(RangeError);
  });

  it('tail of a missing log is empty', async () => {
    expect(await new RotatingLogFile(join(dir, 'none.log')).tail(5)).toEqual([]);
  });

  /**
   * Drives `follow` step by step without timers: the follower's poll wait is a promise the test
   * resolves (`tick`), and `waiting()` resolves once the follower has read everything and waits.
   */
  function driven(log: RotatingLogFile, opts: { fromStart?: boolean } = {}) {
    const ac = new AbortController();
    const seen: string[] = [];
    let release: (() => void) | null = null;
    let parked: (() => void) | null = null;
    const wait = () =>
      new Promise<void>((r) => {
        release = r;
        parked?.();
      });
    const pump = (async () => {
      for await (const line of log.follow(ac.signal, { ...opts, wait })) seen.push(line);
    })();
    return {
      seen,
      /** Resolves when the follower is parked in its wait (it has read all it could). */
      waiting: () => new Promise<void>((r) => (release ? r() : (parked = r))),
      /** Lets the follower look again, and resolves when it has read all it could. */
      async tick() {
        const go = release!;
        release = null;
        const parkedAgain = new Promise<void>((r) => (parked = r));
        go();
        await parkedAgain;
      },
      async stop() {
        ac.abort();
        release?.();
        await pump;
      },
    };
  }

  it('follow yields appended lines, joins partial writes, and survives a truncation', async () => {
    const path = join(dir, 'output.log');
    writeFileSync(path, 'before\n');
    const f = driven(new RotatingLogFile(path, { maxBytes: 1e6, files: 2, pollMs: 10 }));
    await f.waiting(); // attached at the end of the file: `before` is not followed
    appendFileSync(path, 'one\ntw');
    await f.tick();
    expect(f.seen).toEqual(['one']);
    appendFileSync(path, 'o\n');
    await f.tick();
    expect(f.seen).toEqual(['one', 'two']);
    writeFileSync(path, 'x\n'); // truncated and rewritten
    await f.tick();
    await f.stop();
    expect(f.seen).toEqual(['one', 'two', 'x']);
  });

  it('follow survives a copy-truncate rotation followed by more output than it had read (no line read from the middle, none lost)', async () => {
    const path = join(dir, 'output.log');
    writeFileSync(path, '');
    const log = new RotatingLogFile(path, { maxBytes: 20, files: 3, pollMs: 10 });
    const f = driven(log);
    await f.waiting();
    appendFileSync(path, 'first line\n');
    await f.tick();
    expect(f.seen).toEqual(['first line']);
    // Before the follower looks again: more lines, a rotation, then more output than the follower had read.
    appendFileSync(path, 'second line\nthird line\n');
    expect(await log.rotateIfNeeded()).toBe(true);
    appendFileSync(path, 'a much longer line after the rotation\n');
    await f.tick();
    await f.stop();
    expect(f.seen).toEqual(['first line', 'second line', 'third line', 'a much longer line after the rotation']);
  });

  it('follow joins a line split across a rotation', async () => {
    const path = join(dir, 'output.log');
    writeFileSync(path, '');
    const log = new RotatingLogFile(path, { maxBytes: 5, files: 2, pollMs: 10 });
    const f = driven(log);
    await f.waiting();
    appendFileSync(path, 'hello wo');
    await log.rotateIfNeeded();
    appendFileSync(path, 'rld\nnext\n');
    await f.tick();
    await f.stop();
    expect(f.seen).toEqual(['hello world', 'next']);
  });

  it('follow from the start yields what was written before it attached (a process that printed and exited at once)', async () => {
    const path = join(dir, 'output.log');
    writeFileSync(path, 'early\nlast words\n');
    const log = new RotatingLogFile(path, { maxBytes: 1e6, files: 2, pollMs: 10 });
    const ac = new AbortController();
    const seen: string[] = [];
    for await (const line of log.follow(ac.signal, { fromStart: true })) {
      seen.push(line);
      if (seen.length === 2) ac.abort();
    }
    expect(seen).toEqual(['early', 'last words']);
  });
});
