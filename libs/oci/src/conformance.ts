/**
 * The behaviour every BlobStore and every Snapshotter must show, as jest tests (the image-side
 * counterpart of @berth/runtime's ContainerRuntime conformance). A separate entry,
 * `@berth/oci/conformance`, not exported by `@berth/oci`: production code never loads test code.
 * Call the describe functions from a test file with a harness that opens the implementation
 * (and a second instance over the same state, as after an agent restart).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type { BlobStore } from './content-store';
import { DigestMismatchError, LayerRefusedError } from './errors';
import type { Snapshotter } from './snapshotter';

export interface BlobStoreHarness {
  store: BlobStore;
  /** A second instance over the same state. */
  reopen(): BlobStore;
}

export interface SnapshotterHarness {
  snapshotter: Snapshotter;
  /** A second instance over the same state. */
  reopen(): Snapshotter;
}

const sha256 = (b: Buffer) => 'sha256:' + createHash('sha256').update(b).digest('hex');

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

export function describeBlobStoreConformance(name: string, setup: () => Promise<BlobStoreHarness>, teardown: (h: BlobStoreHarness) => Promise<void>): void {
  describe(`BlobStore conformance: ${name}`, () => {
    let h: BlobStoreHarness;
    beforeAll(async () => {
      h = await setup();
      await h.store.init();
    });
    afterAll(async () => {
      if (h) await teardown(h);
    });
    const blob = (n = 1000) => {
      const bytes = randomBytes(n);
      return { bytes, digest: sha256(bytes) };
    };
    const listed = async (s: BlobStore, digest: string) => (await s.list()).some((b) => b.digest === digest);

    it('an ingest is invisible until committed; then info, has, list and readStream show exactly its bytes', async () => {
      const { bytes, digest } = blob(300_000);
      const ing = await h.store.openIngest(digest, { expectedSize: bytes.length });
      await ing.write(bytes.subarray(0, 1000));
      expect(ing.written).toBe(1000);
      expect(await h.store.has(digest)).toBe(false);
      expect(await h.store.info(digest)).toBeUndefined();
      expect(await listed(h.store, digest)).toBe(false);
      await ing.write(bytes.subarray(1000));
      expect(await ing.commit()).toEqual({ digest, size: bytes.length });
      expect(await h.store.has(digest)).toBe(true);
      expect(await h.store.info(digest)).toEqual({ digest, size: bytes.length });
      expect(await listed(h.store, digest)).toBe(true);
      expect((await readAll(h.store.readStream(digest))).equals(bytes)).toBe(true);
      expect(await h.reopen().info(digest)).toEqual({ digest, size: bytes.length });
    });

    it('refuses bytes that do not hash to the digest, and keeps nothing', async () => {
      const { digest } = blob();
      const ing = await h.store.openIngest(digest);
      await ing.write(randomBytes(1000));
      await expect(ing.commit()).rejects.toBeInstanceOf(DigestMismatchError);
      expect(await h.store.has(digest)).toBe(false);
      expect(await listed(h.store, digest)).toBe(false);
    });

    it('refuses more bytes than expected at write, and fewer at commit', async () => {
      const big = blob(100);
      const over = await h.store.openIngest(big.digest, { expectedSize: 99 });
      await expect(over.write(big.bytes)).rejects.toBeInstanceOf(LayerRefusedError);
      await over.abort();
      await over.abort(); // twice is fine
      expect(await h.store.has(big.digest)).toBe(false);

      const small = blob(100);
      const under = await h.store.openIngest(small.digest, { expectedSize: 101 });
      await under.write(small.bytes);
      await expect(under.commit()).rejects.toBeInstanceOf(DigestMismatchError);
      expect(await h.store.has(small.digest)).toBe(false);
    });

    it('an aborted or abandoned ingest leaves nothing visible, before and after cleanIngests', async () => {
      const a = blob();
      const ing = await h.store.openIngest(a.digest);
      await ing.write(a.bytes);
      await ing.abort();
      expect(await h.store.has(a.digest)).toBe(false);
      const b = blob();
      const abandoned = await h.store.openIngest(b.digest);
      await abandoned.write(b.bytes); // a crash here: never committed nor aborted
      const restarted = h.reopen();
      await restarted.cleanIngests();
      expect(await restarted.has(b.digest)).toBe(false);
      expect(await listed(restarted, b.digest)).toBe(false);
      await restarted.putBytes(b.digest, b.bytes); // the digest can still be stored afresh
      expect(await restarted.info(b.digest)).toEqual({ digest: b.digest, size: b.bytes.length });
    });

    it('ingest shares one fetch between concurrent calls and does not fetch what is stored', async () => {
      const { bytes, digest } = blob(50_000);
      let opened = 0;
      const open = async () => {
        opened++;
        return Readable.from([bytes.subarray(0, 20_000), bytes.subarray(20_000)]);
      };
      const [x, y] = await Promise.all([h.store.ingest(digest, open), h.store.ingest(digest, open)]);
      expect(x).toEqual({ digest, size: bytes.length });
      expect(y).toEqual(x);
      expect(opened).toBe(1);
      await h.store.ingest(digest, open);
      expect(opened).toBe(1);
    });

    it('delete removes a blob and is a no-op for an absent one', async () => {
      const { bytes, digest } = blob();
      await h.store.putBytes(digest, bytes);
      await h.store.delete(digest);
      expect(await h.store.has(digest)).toBe(false);
      expect(await listed(h.store, digest)).toBe(false);
      await expect(h.store.delete(digest)).resolves.toBeUndefined();
    });
  });
}

export function describeSnapshotterConformance(
  name: string,
  setup: () => Promise<SnapshotterHarness>,
  teardown: (h: SnapshotterHarness) => Promise<void>,
): void {
  describe(`Snapshotter conformance: ${name}`, () => {
    let h: SnapshotterHarness;
    let seq = 0;
    beforeAll(async () => {
      h = await setup();
      await h.snapshotter.init();
    });
    afterAll(async () => {
      if (h) await teardown(h);
    });
    const chain = () => sha256(randomBytes(16));
    const key = () => `conf-${process.pid}-${++seq}`;
    /** Stages and commits a one-file layer. */
    const commit = async (chainId: string, content: string, parentChainId?: string) => {
      const st = await h.snapshotter.stage(chainId);
      await writeFile(join(st.dir, 'file'), content);
      const info: Parameters<typeof st.commit>[0] = { diffId: chainId, layerDigest: sha256(Buffer.from(content)), size: content.length };
      if (parentChainId) info.parentChainId = parentChainId;
      return st.commit(info);
    };

    it('a staged layer is invisible until committed; then stat, list and fsPath show it', async () => {
      const c = chain();
      const st = await h.snapshotter.stage(c);
      await mkdir(join(st.dir, 'etc'));
      await writeFile(join(st.dir, 'etc', 'hostname'), 'box');
      expect(await h.snapshotter.stat(c)).toBeUndefined();
      expect((await h.snapshotter.list()).some((s) => s.chainId === c)).toBe(false);
      const info = await st.commit({ diffId: c, layerDigest: sha256(Buffer.from('x')), size: 3 });
      expect(info).toMatchObject({ chainId: c, diffId: c, size: 3 });
      expect(await h.snapshotter.stat(c)).toEqual(info);
      expect((await h.snapshotter.list()).some((s) => s.chainId === c)).toBe(true);
      expect(await readFile(join(h.snapshotter.fsPath(c), 'etc', 'hostname'), 'utf8')).toBe('box');
      expect(await h.reopen().stat(c)).toEqual(info);
      await expect(st.commit({ diffId: c, layerDigest: c, size: 3 })).rejects.toThrow();
    });

    it('an aborted staging leaves nothing; a crash mid-unpack is cleaned by cleanStaging', async () => {
      const c = chain();
      const st = await h.snapshotter.stage(c);
      await writeFile(join(st.dir, 'half'), 'x');
      await st.abort();
      expect(await h.snapshotter.stat(c)).toBeUndefined();
      await expect(stat(st.dir)).rejects.toMatchObject({ code: 'ENOENT' });
      const crashed = await h.snapshotter.stage(c);
      await writeFile(join(crashed.dir, 'half'), 'x');
      const restarted = h.reopen();
      await restarted.cleanStaging();
      await expect(stat(crashed.dir)).rejects.toMatchObject({ code: 'ENOENT' });
      expect(await restarted.stat(c)).toBeUndefined();
    });

    it('two writers of the same layer: the first commit wins, the second gets it back', async () => {
      const c = chain();
      const a = await h.snapshotter.stage(c);
      const b = await h.snapshotter.stage(c);
      await writeFile(join(a.dir, 'file'), 'a');
      await writeFile(join(b.dir, 'file'), 'b');
      const first = await a.commit({ diffId: c, layerDigest: c, size: 1 });
      expect(await b.commit({ diffId: c, layerDigest: c, size: 1 })).toEqual(first);
      expect(await readFile(join(h.snapshotter.fsPath(c), 'file'), 'utf8')).toBe('a');
    });

    it('prepare makes a writable view over committed layers, top-most first; mounts and listActive show it; remove drops it', async () => {
      const base = chain();
      const top = chain();
      await commit(base, 'base');
      await commit(top, 'top', base);
      const k = key();
      const m = await h.snapshotter.prepare(k, [base, top]);
      expect(m.lowerdirs).toEqual([h.snapshotter.fsPath(top), h.snapshotter.fsPath(base)]);
      expect(m.options).toContain(`lowerdir=${m.lowerdirs.join(':')}`);
      expect(m.upperdir).not.toBe(m.workdir);
      expect((await stat(m.upperdir)).isDirectory()).toBe(true);
      expect((await stat(m.workdir)).isDirectory()).toBe(true);
      expect(await h.snapshotter.mounts(k)).toEqual(m);
      expect(await h.reopen().mounts(k)).toEqual(m);
      expect((await h.snapshotter.listActive()).find((a) => a.key === k)?.chainIds).toEqual([base, top]);
      await expect(h.snapshotter.prepare(k, [base])).rejects.toThrow(/already exists/);
      await h.snapshotter.remove(k);
      expect((await h.snapshotter.listActive()).some((a) => a.key === k)).toBe(false);
      await expect(stat(m.upperdir)).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(h.snapshotter.remove(k)).resolves.toBeUndefined();
    });

    it('prepare refuses layers that are not committed, no layers, and keys that are not plain names', async () => {
      const c = chain();
      await expect(h.snapshotter.prepare(key(), [c])).rejects.toThrow(/not committed/);
      await expect(h.snapshotter.prepare(key(), [])).rejects.toThrow();
      await commit(c, 'x');
      for (const bad of ['../escape', 'a/b', '', '.hidden']) await expect(h.snapshotter.prepare(bad, [c])).rejects.toThrow(/invalid/);
    });

    it('removeSnapshot drops a committed layer (no error when absent); usage counts committed sizes', async () => {
      const c = chain();
      const before = await h.snapshotter.usage();
      await commit(c, 'twelve bytes');
      expect(await h.snapshotter.usage()).toBe(before + 12);
      await h.snapshotter.removeSnapshot(c);
      expect(await h.snapshotter.stat(c)).toBeUndefined();
      expect(await h.snapshotter.usage()).toBe(before);
      await expect(h.snapshotter.removeSnapshot(c)).resolves.toBeUndefined();
    });
  });
}
