import { spawnSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { runInNewContext } from 'node:vm';
import { ContentStore, DigestMismatchError, LayerRefusedError, LayerUnpacker, OverlaySnapshotter, type UnpackWarning } from '@berth/oci';
import { layerFromTar, makeLayer, makeTar, sha256, type BuiltLayer, type TarEntry } from './helpers/image-builder';

function getfattr(path: string, name: string): string | undefined {
  const r = spawnSync('getfattr', ['-h', '--only-values', '-n', name, path]);
  if (r.status !== 0) return undefined;
  return '0x' + r.stdout.toString('hex');
}

/** Snapshot of a directory tree (names, types, sizes, contents) to prove it was not touched. */
function fingerprint(dir: string): string {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const p = join(d, name);
      const st = lstatSync(p);
      out.push(`${p}:${st.mode}:${st.size}:${st.mtimeMs}:${st.isFile() ? readFileSync(p, 'hex') : ''}`);
      if (st.isDirectory()) walk(p);
    }
  };
  walk(dir);
  return out.join('\n');
}

describe('LayerUnpacker on a real filesystem', () => {
  const root = join(tmpdir(), `berth-oci-unpack-${process.pid}-${Date.now()}`);
  const sentinel = join(root, 'sentinel'); // stands in for the host: must never change
  const snapshotter = new OverlaySnapshotter(join(root, 'store'));
  const warnings: UnpackWarning[] = [];
  const unpacker = new LayerUnpacker({ maxUncompressedBytes: 64 * 1024 * 1024, onWarning: (w) => warnings.push(w) });
  let sentinelPrint: string;

  beforeAll(async () => {
    mkdirSync(root, { recursive: true });
    mkdirSync(join(sentinel, 'etc'), { recursive: true });
    writeFileSync(join(sentinel, 'etc', 'passwd'), 'root:x:0:0::/root:/bin/sh\n');
    writeFileSync(join(sentinel, 'secret'), 'do not touch');
    sentinelPrint = fingerprint(sentinel);
    await snapshotter.init();
  });
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  afterEach(() => {
    // Every test, hostile or not, leaves the "host" exactly as it was.
    expect(fingerprint(sentinel)).toBe(sentinelPrint);
  });

  async function unpackInto(layer: BuiltLayer, opts: Parameters<LayerUnpacker['unpack']>[3] = {}) {
    const dest = mkdtempSync(join(root, 'layer-'));
    const desc = { digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType };
    // Feed in small chunks to exercise stream boundaries.
    const chunks: Buffer[] = [];
    for (let i = 0; i < layer.blob.length; i += 7000) chunks.push(layer.blob.subarray(i, i + 7000));
    const res = await unpacker.unpack(Readable.from(chunks), dest, desc, opts);
    return { dest, res };
  }

  async function refused(entries: TarEntry[], entryName: string | undefined, reason: RegExp) {
    const layer = await makeLayer(entries);
    const staging = await snapshotter.stage('sha256:' + 'e'.repeat(64));
    const desc = { digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType };
    const err = await unpacker.unpack(Readable.from([layer.blob]), staging.dir, desc).catch((e) => e);
    await staging.abort();
    expect(err).toBeInstanceOf(LayerRefusedError);
    expect(err.layerDigest).toBe(layer.digest);
    if (entryName !== undefined) expect(err.entry).toBe(entryName);
    expect(err.message).toContain(layer.digest);
    expect(err.message).toMatch(reason);
    // Nothing half-unpacked is left behind.
    expect(readdirSync(join(root, 'store', 'snapshots', '.staging'))).toEqual([]);
    expect(readdirSync(join(root, 'store', 'snapshots')).filter((n) => n !== '.staging')).toEqual([]);
    return err as LayerRefusedError;
  }

  it('keeps contents, modes, ownership, mtimes, symlinks, hardlinks and xattrs', async () => {
    const cap = Buffer.from('0100000200200000000000000000000000000000', 'hex'); // binary, bytes >= 0x80 absent but 0x00 present
    const capHigh = Buffer.from('01000002c0ff0000000000000000000000000000', 'hex'); // bytes >= 0x80
    const mtime = new Date('2020-05-06T07:08:09Z');
    const layer = await makeLayer([
      { name: './', type: 'directory', mode: 0o755 },
      { name: 'bin/', type: 'directory', mode: 0o750, uid: 10, gid: 20, mtime },
      { name: 'bin/tool', content: '#!/bin/sh\necho hi\n', mode: 0o4755, uid: 1000, gid: 1001, mtime },
      { name: 'bin/ping', content: 'ping', mode: 0o755, pax: { 'SCHILY.xattr.security.capability': cap.toString('latin1') } },
      { name: 'bin/cap2', content: 'x', pax: { 'SCHILY.xattr.security.capability': capHigh.toString('latin1'), 'SCHILY.xattr.user.note': 'hello' } },
      { name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox', uid: 5, gid: 6 },
      { name: 'bin/tool-link', type: 'link', linkname: 'bin/tool' },
      { name: 'deep/a/b/c.txt', content: 'implicit parents' },
      { name: 'etc/', type: 'directory' },
      { name: 'etc/passwd', content: 'first' },
      { name: 'etc/passwd', content: 'second wins' },
    ]);
    const { dest, res } = await unpackInto(layer);
    expect(res.diffId).toBe(layer.diffId);
    expect(res.compressedBytes).toBe(layer.size);
    const tool = statSync(join(dest, 'bin/tool'));
    expect(tool.mode & 0o7777).toBe(0o4755);
    expect([tool.uid, tool.gid]).toEqual([1000, 1001]);
    expect(tool.mtime.toISOString()).toBe(mtime.toISOString());
    expect(readFileSync(join(dest, 'bin/tool'), 'utf8')).toBe('#!/bin/sh\necho hi\n');
    const bin = statSync(join(dest, 'bin'));
    expect(bin.mode & 0o7777).toBe(0o750);
    expect([bin.uid, bin.gid]).toEqual([10, 20]);
    expect(bin.mtime.toISOString()).toBe(mtime.toISOString()); // set after its children were written
    expect(readlinkSync(join(dest, 'bin/sh'))).toBe('/bin/busybox');
    expect(lstatSync(join(dest, 'bin/sh')).uid).toBe(5);
    expect(statSync(join(dest, 'bin/tool-link')).ino).toBe(tool.ino);
    expect(readFileSync(join(dest, 'deep/a/b/c.txt'), 'utf8')).toBe('implicit parents');
    expect(readFileSync(join(dest, 'etc/passwd'), 'utf8')).toBe('second wins');
    expect(getfattr(join(dest, 'bin/ping'), 'security.capability')).toBe('0x' + cap.toString('hex'));
    expect(getfattr(join(dest, 'bin/cap2'), 'security.capability')).toBe('0x' + capHigh.toString('hex'));
    expect(getfattr(join(dest, 'bin/cap2'), 'user.note')).toBe('0x' + Buffer.from('hello').toString('hex'));
  });

  it('turns OCI whiteouts into overlay whiteouts and opaque markers', async () => {
    const layer = await makeLayer([
      { name: 'etc/', type: 'directory' },
      { name: 'etc/.wh.motd', content: '' },
      { name: 'var/cache/', type: 'directory' },
      { name: 'var/cache/.wh..wh..opq', content: '' },
      { name: 'var/cache/new', content: 'fresh' },
      { name: 'opt/.wh.gone dir', content: '' },
    ]);
    const { dest } = await unpackInto(layer);
    const wh = lstatSync(join(dest, 'etc/motd'));
    expect(wh.isCharacterDevice()).toBe(true);
    expect(wh.rdev).toBe(0);
    expect(lstatSync(join(dest, 'opt/gone dir')).isCharacterDevice()).toBe(true);
    expect(existsSync(join(dest, 'etc/.wh.motd'))).toBe(false);
    expect(getfattr(join(dest, 'var/cache'), 'trusted.overlay.opaque')).toBe('0x79');
    expect(existsSync(join(dest, 'var/cache/.wh..wh..opq'))).toBe(false);
    expect(readFileSync(join(dest, 'var/cache/new'), 'utf8')).toBe('fresh');
  });

  it('lets later entries win over earlier whiteouts and fifos for the same path', async () => {
    const layer = await makeLayer([
      { name: 'a/.wh.x', content: '' },
      { name: 'a/x', content: 'recreated' },
      { name: 'p', type: 'fifo' },
      { name: 'p', content: 'now a file' },
      { name: 'q', type: 'fifo' },
    ]);
    const { dest } = await unpackInto(layer);
    expect(readFileSync(join(dest, 'a/x'), 'utf8')).toBe('recreated');
    expect(readFileSync(join(dest, 'p'), 'utf8')).toBe('now a file');
    expect(lstatSync(join(dest, 'q')).isFIFO()).toBe(true);
  });

  it('unpacks zstd and uncompressed layers', async () => {
    const entries: TarEntry[] = [{ name: 'z', content: 'zstd content '.repeat(1000) }];
    for (const c of ['zstd', 'none'] as const) {
      const layer = await makeLayer(entries, c);
      const { dest, res } = await unpackInto(layer);
      expect(readFileSync(join(dest, 'z'), 'utf8')).toBe('zstd content '.repeat(1000));
      expect(res.diffId).toBe(layer.diffId);
    }
  });

  it('skips device nodes with a warning', async () => {
    warnings.length = 0;
    const layer = await makeLayer([
      { name: 'dev/', type: 'directory' },
      { name: 'dev/sda', type: 'block-device', devmajor: 8, devminor: 0 },
      { name: 'dev/mem', type: 'character-device', devmajor: 1, devminor: 1 },
      { name: 'ok', content: 'x' },
    ]);
    const { dest } = await unpackInto(layer);
    expect(existsSync(join(dest, 'dev/sda'))).toBe(false);
    expect(existsSync(join(dest, 'dev/mem'))).toBe(false);
    expect(warnings.map((w) => w.entry)).toEqual(['dev/sda', 'dev/mem']);
    expect(warnings[0]!.layer).toBe(layer.digest);
  });

  describe('hostile layers are refused and the host is untouched', () => {
    it('absolute paths', async () => {
      await refused([{ name: `${sentinel}/secret`, content: 'pwned' }], `${sentinel}/secret`, /absolute path/);
    });
    it('".." escapes', async () => {
      await refused([{ name: '../../sentinel/secret', content: 'pwned' }], '../../sentinel/secret', /\.\./);
      await refused([{ name: 'a/../../x', content: 'pwned' }], 'a/../../x', /\.\./);
    });
    it('writing through a symlinked parent (absolute target)', async () => {
      await refused(
        [
          { name: 'etc', type: 'symlink', linkname: join(sentinel, 'etc') },
          { name: 'etc/passwd', content: 'pwned' },
        ],
        'etc/passwd',
        /parent 'etc' is a symlink/,
      );
    });
    it('writing through a symlinked parent (relative target climbing out)', async () => {
      const rel = '../'.repeat(12) + sentinel.slice(1);
      await refused(
        [
          { name: 'x/', type: 'directory' },
          { name: 'x/up', type: 'symlink', linkname: rel },
          { name: 'x/up/secret', content: 'pwned' },
        ],
        'x/up/secret',
        /symlink/,
      );
    });
    it('a directory entry and a whiteout under a symlink', async () => {
      await refused(
        [
          { name: 'l', type: 'symlink', linkname: sentinel },
          { name: 'l/newdir/', type: 'directory' },
        ],
        'l/newdir/',
        /symlink/,
      );
      await refused(
        [
          { name: 'l', type: 'symlink', linkname: sentinel },
          { name: 'l/.wh.secret', content: '' },
        ],
        'l/.wh.secret',
        /symlink/,
      );
    });
    it('replacing a directory by a symlink after its children were queued for xattrs', async () => {
      // The symlink replaces the directory; the pending xattr must not follow it to the host.
      const layer = await makeLayer([
        { name: 'd/', type: 'directory' },
        { name: 'd/secret', content: 'x', pax: { 'SCHILY.xattr.user.pwned': 'yes' } },
        { name: 'd', type: 'symlink', linkname: sentinel },
      ]);
      const { dest } = await unpackInto(layer);
      expect(readlinkSync(join(dest, 'd'))).toBe(sentinel);
      expect(getfattr(join(sentinel, 'secret'), 'user.pwned')).toBeUndefined();
    });
    it('hardlinks to files outside the layer', async () => {
      await refused([{ name: 'h', type: 'link', linkname: join(sentinel, 'secret') }], 'h', /absolute path/);
      await refused([{ name: 'h', type: 'link', linkname: '../sentinel/secret' }], 'h', /\.\./);
      await refused([{ name: 'h', type: 'link', linkname: 'missing' }], 'h', /not in this layer/);
      await refused(
        [
          { name: 's', type: 'symlink', linkname: sentinel },
          { name: 'h', type: 'link', linkname: 's/secret' },
        ],
        'h',
        /not inside this layer/,
      );
    });
    it('more compressed bytes than the manifest declares', async () => {
      const layer = await makeLayer([{ name: 'big', content: randomish(50_000) }]);
      const short = { ...layer, size: layer.size - 100 };
      const dest = mkdtempSync(join(root, 'layer-'));
      const err = await unpacker
        .unpack(Readable.from([layer.blob]), dest, { digest: layer.digest, diffId: layer.diffId, size: short.size, mediaType: layer.mediaType })
        .catch((e) => e);
      expect(err).toBeInstanceOf(LayerRefusedError);
      expect(err.message).toMatch(/more than the \d+ compressed bytes/);
    });
    it('a decompression bomb beyond the uncompressed limit', async () => {
      const small = new LayerUnpacker({ maxUncompressedBytes: 1024 * 1024 });
      const bomb = layerFromTar(await makeTar([{ name: 'zeros', content: Buffer.alloc(20 * 1024 * 1024) }]));
      expect(bomb.size).toBeLessThan(100_000);
      const dest = mkdtempSync(join(root, 'layer-'));
      const err = await small
        .unpack(Readable.from([bomb.blob]), dest, { digest: bomb.digest, diffId: bomb.diffId, size: bomb.size, mediaType: bomb.mediaType })
        .catch((e) => e);
      expect(err).toBeInstanceOf(LayerRefusedError);
      expect(err.message).toMatch(/decompression bomb/);
    });
  });

  it('rejects bytes that do not hash to the layer digest or diff id, and the ingest keeps nothing', async () => {
    const store = new ContentStore(join(root, 'cs'));
    await store.init();
    const layer = await makeLayer([{ name: 'f', content: 'abc' }]);
    const wrong = { digest: sha256(Buffer.from('other')), diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType };
    const ingest = await store.openIngest(wrong.digest, { expectedSize: layer.size });
    const dest = mkdtempSync(join(root, 'layer-'));
    const err = await unpacker.unpack(Readable.from([layer.blob]), dest, wrong, { ingest }).catch((e) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(err.expected).toBe(wrong.digest);
    expect(err.actual).toBe(layer.digest);
    expect(readdirSync(store.ingestDir)).toEqual([]);
    expect(await store.list()).toEqual([]);

    const badDiff = { digest: layer.digest, diffId: sha256(Buffer.from('nope')), size: layer.size, mediaType: layer.mediaType };
    const err2 = await unpacker.unpack(Readable.from([layer.blob]), mkdtempSync(join(root, 'layer-')), badDiff).catch((e) => e);
    expect(err2).toBeInstanceOf(DigestMismatchError);
    expect(err2.message).toMatch(/diff_id/);
  });
});

it('surfaces a source that breaks mid-entry as that error (and leaves no stray stream errors)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-oci-broken-'));
  try {
    const layer = await makeLayer([{ name: 'blob.bin', content: randomish(3 * 1024 * 1024) }]);
    for (let i = 0; i < 3; i++) {
      const src = new Readable({ read() {} });
      src.push(layer.blob.subarray(0, 100_000));
      setTimeout(() => src.destroy(Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' })), 5);
      const dest = mkdtempSync(join(dir, 'l-'));
      const err = await new LayerUnpacker()
        .unpack(src, dest, { digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType })
        .catch((e) => e);
      expect(err.code).toBe('UND_ERR_SOCKET');
    }
    // tar-stream used to re-emit the teardown on the entry stream after the test had finished
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('reports authentic bytes that are not a tar as a decode error, not a digest mismatch', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-oci-notar-'));
  try {
    const notTar = layerFromTar(Buffer.alloc(1024, 0x41));
    const err = await new LayerUnpacker()
      .unpack(Readable.from([notTar.blob]), dir, { digest: notTar.digest, diffId: notTar.diffId, size: notTar.size, mediaType: notTar.mediaType })
      .catch((e) => e);
    expect(err).toBeInstanceOf(Error);
    expect(err).not.toBeInstanceOf(DigestMismatchError);
    expect(err.message).toMatch(/tar|header/i);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

/** Names, types, modes, owners, sizes, content hashes and mtimes (not of whiteouts: made at unpack time). */
function shape(root: string): string {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(join(root, rel)).sort()) {
      const r = join(rel, name);
      const st = lstatSync(join(root, r));
      const content = st.isFile() ? sha256(readFileSync(join(root, r))) : '';
      out.push(`${r}:${st.mode.toString(8)}:${st.uid}:${st.gid}:${st.size}:${st.isCharacterDevice() ? '' : st.mtimeMs}:${content}`);
      if (st.isDirectory()) walk(r);
    }
  };
  walk('');
  return out.join('\n');
}

function randomish(n: number): Buffer {
  const b = Buffer.alloc(n);
  let x = 12345;
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    b[i] = x >> 16;
  }
  return b;
}

it('unpacks on both threads without turning on --expose-gc for the process', async () => {
  // Memory is held by bounded buffers and a small worker heap, not by calling the GC: no V8
  // flag may be set behind the agent's back (it would apply to every context created later).
  const dir = mkdtempSync(join(tmpdir(), 'berth-oci-nogc-'));
  try {
    const layer = await makeLayer([{ name: 'blob.bin', content: randomish(6 * 1024 * 1024) }]);
    const desc = { digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType };
    for (const decodeThread of ['worker', 'main'] as const) {
      const res = await new LayerUnpacker({ decodeThread }).unpack(Readable.from([layer.blob]), mkdtempSync(join(dir, `${decodeThread}-`)), desc);
      expect(res.diffId).toBe(layer.diffId);
    }
    expect(runInNewContext('typeof gc')).toBe('undefined');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('decodes the same tree on the decode worker and on the calling thread (ring wraps, all compressions)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-oci-threads-'));
  try {
    // 9 MiB of incompressible data: more than the worker's 4 × 1 MiB ring, so slots are reused.
    const big = randomish(9 * 1024 * 1024);
    const entries: TarEntry[] = [
      { name: 'd', type: 'directory', mode: 0o750, uid: 7, gid: 8 },
      { name: 'd/big.bin', content: big, mode: 0o640 },
      { name: 'd/small', content: 'x'.repeat(10) },
      { name: 'd/.wh.gone', content: '' },
    ];
    for (const c of ['gzip', 'zstd', 'none'] as const) {
      const layer = await makeLayer(entries, c);
      const desc = { digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType };
      const trees: string[] = [];
      for (const decodeThread of ['worker', 'main'] as const) {
        const dest = mkdtempSync(join(dir, `${c}-${decodeThread}-`));
        // Odd chunk sizes: batches straddle slot boundaries.
        const chunks: Buffer[] = [];
        for (let i = 0; i < layer.blob.length; i += 65_537) chunks.push(layer.blob.subarray(i, i + 65_537));
        const res = await new LayerUnpacker({ decodeThread }).unpack(Readable.from(chunks), dest, desc);
        expect(res.diffId).toBe(layer.diffId);
        expect(res.compressedBytes).toBe(layer.size);
        expect(sha256(readFileSync(join(dest, 'd', 'big.bin')))).toBe(sha256(big));
        expect(statSync(join(dest, 'd', 'gone')).isCharacterDevice()).toBe(true);
        trees.push(shape(dest));
      }
      expect(trees[0]).toBe(trees[1]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

it('fails the layers of a decode worker that dies mid-stream, and the next layer gets a new worker', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-oci-worker-death-'));
  try {
    const layer = await makeLayer([{ name: 'big.bin', content: randomish(6 * 1024 * 1024) }]);
    const desc = { digest: layer.digest, diffId: layer.diffId, size: layer.size, mediaType: layer.mediaType };
    // A source that delivers the first 2 MiB, then waits: the worker dies while the layer is open.
    const src = new Readable({ read() {} });
    src.push(layer.blob.subarray(0, 2 * 1024 * 1024));
    const unpacking = new LayerUnpacker().unpack(src, mkdtempSync(join(dir, 'l-')), desc).catch((e) => e);
    await new Promise((r) => setTimeout(r, 200));
    await LayerUnpacker.closeWorker({ force: true });
    src.push(layer.blob.subarray(2 * 1024 * 1024));
    src.push(null);
    const err = await unpacking;
    expect(err).toBeInstanceOf(Error);
    expect(err.message).toMatch(/decode worker/);

    const dest = mkdtempSync(join(dir, 'l-'));
    const res = await new LayerUnpacker().unpack(Readable.from([layer.blob]), dest, desc);
    expect(res.diffId).toBe(layer.diffId);
    expect(statSync(join(dest, 'big.bin')).size).toBe(6 * 1024 * 1024);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
