import { mkdirSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ContentStore, DigestMismatchError, LayerRefusedError } from '@berth/oci';
import { sha256 } from './helpers/image-builder';

describe('ContentStore on a real filesystem', () => {
  const root = join(tmpdir(), `berth-oci-cs-${process.pid}-${Date.now()}`);
  const store = new ContentStore(root);
  beforeAll(async () => {
    mkdirSync(root, { recursive: true });
    await store.init();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('commits a blob under its digest only after it hashes right', async () => {
    const bytes = Buffer.from('hello blob');
    const digest = sha256(bytes);
    const ing = await store.openIngest(digest, { expectedSize: bytes.length });
    await ing.write(bytes.subarray(0, 4));
    expect(await store.has(digest)).toBe(false); // invisible until committed
    expect(readdirSync(store.ingestDir)).toHaveLength(1);
    await ing.write(bytes.subarray(4));
    expect(await ing.commit()).toEqual({ digest, size: bytes.length });
    expect(await store.info(digest)).toEqual({ digest, size: bytes.length });
    expect(readdirSync(store.ingestDir)).toEqual([]);
    const back: Buffer[] = [];
    for await (const c of store.readStream(digest)) back.push(c as Buffer);
    expect(Buffer.concat(back).toString()).toBe('hello blob');
    expect(await store.list()).toEqual([{ digest, size: bytes.length }]);
    await store.delete(digest);
    expect(await store.has(digest)).toBe(false);
  });

  it('shares one fetch between concurrent ingests of the same digest', async () => {
    const bytes = Buffer.alloc(200_000, 7);
    const digest = sha256(bytes);
    let opened = 0;
    const open = async () => {
      opened++;
      await new Promise((r) => setTimeout(r, 20));
      return Readable.from([bytes.subarray(0, 100_000), bytes.subarray(100_000)]);
    };
    const results = await Promise.all([store.ingest(digest, open), store.ingest(digest, open), store.ingest(digest, open)]);
    expect(opened).toBe(1);
    expect(results.every((r) => r.size === bytes.length)).toBe(true);
    await store.ingest(digest, open); // already present: not fetched again
    expect(opened).toBe(1);
  });

  it('keeps nothing when bytes do not match, naming expected and actual digests', async () => {
    const wanted = sha256(Buffer.from('expected'));
    const err = await store.ingest(wanted, async () => Readable.from([Buffer.from('tampered')])).catch((e) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(err.expected).toBe(wanted);
    expect(err.actual).toBe(sha256(Buffer.from('tampered')));
    expect(await store.has(wanted)).toBe(false);
    expect(readdirSync(store.ingestDir)).toEqual([]);
  });

  it('refuses more bytes than expected', async () => {
    const bytes = Buffer.from('0123456789');
    const err = await store
      .ingest(sha256(bytes), async () => Readable.from([bytes]), { expectedSize: 5 })
      .catch((e) => e);
    expect(err).toBeInstanceOf(LayerRefusedError);
    expect(readdirSync(store.ingestDir)).toEqual([]);
  });
});
