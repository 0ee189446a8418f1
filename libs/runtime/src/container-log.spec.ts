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

  it('follow yields appended lines, joins partial writes, and survives a truncation', async () => {
    const path = join(dir, 'output.log');
    writeFileSync(path, 'before\n');
    const log = new RotatingLogFile(path, { maxBytes: 1e6, files: 2, pollMs: 10 });
    const ac = new AbortController();
    const seen: string[] = [];
    const it = log.follow(ac.signal)[Symbol.asyncIterator]();
    const pump = (async () => {
      for (;;) {
        const r = await it.next();
        if (r.done) return;
        seen.push(r.value);
        if (seen.length === 3) ac.abort();
      }
    })();
    await new Promise((r) => setTimeout(r, 30));
    appendFileSync(path, 'one\ntw');
    await new Promise((r) => setTimeout(r, 30));
    appendFileSync(path, 'o\n');
    await new Promise((r) => setTimeout(r, 30));
    writeFileSync(path, 'x\n'); // truncated and rewritten, as rotation does
    await pump;
    expect(seen).toEqual(['one', 'two', 'x']);
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
