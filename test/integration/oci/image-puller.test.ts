import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DigestMismatchError, ImagePuller, LayerUnpacker, RegistryUnavailableError, mountOverlay, parseReference, unmountOverlay, type PullProgress } from '@berth/oci';
import { makeLayer, pushImage, pushIndex, REGISTRY, uniqueRepo, type PushedImage } from './helpers/image-builder';
import { startProxy, type TestServer } from './helpers/servers';

// Test servers listen on random loopback ports: allow loopback (the address policy has its own test).
const fastClient = { retries: 1, retryBaseDelayMs: 5, timeoutMs: 5000, allowPrivate: ['127.0.0.0/8'] };

function blobRequests(proxy: TestServer, digests: string[]): string[] {
  return proxy.requests.filter((r) => r.method === 'GET' && digests.some((d) => r.url.endsWith(`/blobs/${d}`))).map((r) => r.url.split('/blobs/')[1]!);
}

describe('ImagePuller against the local registry', () => {
  const tmp = join(tmpdir(), `berth-oci-pull-${process.pid}-${Date.now()}`);
  const repo = uniqueRepo('pull');
  let app1: PushedImage;
  let app2: PushedImage;
  let layered: PushedImage;
  let big: PushedImage;
  let proxy: TestServer;
  const mounted: string[] = [];
  const pullers: ImagePuller[] = [];
  const puller = (root: string, extra: Partial<ConstructorParameters<typeof ImagePuller>[0]> = {}) => {
    const p = new ImagePuller({ root, clientOptions: fastClient, ...extra });
    pullers.push(p);
    return p;
  };

  const baseBytes = randomBytes(256 * 1024); // incompressible, so byte counts tell layers apart
  beforeAll(async () => {
    mkdirSync(tmp, { recursive: true });
    const base = await makeLayer([
      { name: 'bin/', type: 'directory' },
      { name: 'bin/base', content: baseBytes },
    ]);
    app1 = await pushImage(repo, 'app1', [base, await makeLayer([{ name: 'app', content: 'one' }])]);
    app2 = await pushImage(repo, 'app2', [base, await makeLayer([{ name: 'app', content: 'two '.repeat(500) }])]);
    layered = await pushImage(repo, 'layered', [
      await makeLayer([
        { name: 'etc/', type: 'directory' },
        { name: 'etc/motd', content: 'welcome' },
        { name: 'etc/keep', content: 'kept' },
        { name: 'var/cache/', type: 'directory' },
        { name: 'var/cache/a', content: 'a' },
        { name: 'var/cache/b', content: 'b' },
        { name: 'opt/x', content: 'x' },
      ]),
      await makeLayer([
        { name: 'etc/.wh.motd', content: '' },
        { name: 'var/cache/.wh..wh..opq', content: '' },
        { name: 'var/cache/c', content: 'c' },
        { name: 'new', content: 'top' },
      ], 'zstd'),
    ]);
    const rnd = Buffer.alloc(3 * 1024 * 1024);
    for (let i = 0; i < rnd.length; i += 4) rnd.writeUInt32LE((Math.random() * 0xffffffff) >>> 0, i);
    big = await pushImage(repo, 'big', [await makeLayer([{ name: 'blob.bin', content: rnd }])]);
    proxy = await startProxy(REGISTRY);
  });

  afterAll(async () => {
    for (const m of mounted) spawnSync('umount', [m]);
    for (const p of pullers) await p.close();
    await proxy?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('pulls by tag into committed snapshots, and a second image sharing the base fetches only its new layer', async () => {
    const root = join(tmp, 'shared');
    const p = puller(root, { keepLayerBlobs: true });
    const r1 = await p.pull(`${proxy.host}/${repo}:app1`);
    expect(r1.digest).toBe(app1.digest);
    expect(r1.fetchedLayers).toEqual(app1.layers.map((l) => l.digest));
    expect(r1.bytesFetched).toBe(app1.layers[0]!.size + app1.layers[1]!.size);
    expect(readFileSync(join(r1.layers[1]!, 'app'), 'utf8')).toBe('one');
    expect(readFileSync(join(r1.layers[0]!, 'bin/base')).equals(baseBytes)).toBe(true);
    expect(r1.chainIds[0]).toBe(app1.layers[0]!.diffId);

    const before = proxy.requests.length;
    const servedBefore = proxy.bytesServed;
    const r2 = await p.pull(`${proxy.host}/${repo}:app2`);
    const served = proxy.bytesServed - servedBefore;
    expect(served).toBeGreaterThanOrEqual(app2.layers[1]!.size);
    expect(served).toBeLessThan(app2.layers[0]!.size); // the 256 KiB base layer was not downloaded again
    const after = proxy.requests.slice(before);
    expect(r2.fetchedLayers).toEqual([app2.layers[1]!.digest]);
    expect(r2.reusedLayers).toEqual([app2.layers[0]!.digest]);
    expect(r2.bytesFetched).toBe(app2.layers[1]!.size);
    const layerGets = after.filter((q) => q.url.includes('/blobs/') && app2.layers.some((l) => q.url.endsWith(l.digest)));
    expect(layerGets.map((q) => q.url.split('/blobs/')[1])).toEqual([app2.layers[1]!.digest]);
    expect(r2.layers[0]).toBe(r1.layers[0]); // same snapshot directory

    // Content store holds manifests, configs and compressed layers under their digests.
    for (const d of [app1.digest, app1.configDigest, ...app1.layers.map((l) => l.digest), app2.layers[1]!.digest]) {
      expect(await p.content.has(d)).toBe(true);
    }
  });

  it('pulls by digest, by default keeping snapshots but not compressed layer blobs', async () => {
    const p = puller(join(tmp, 'bydigest'));
    const r = await p.pull({ registry: REGISTRY, repository: repo, digest: app1.digest });
    expect(r.digest).toBe(app1.digest);
    expect(await p.content.has(app1.configDigest)).toBe(true);
    expect(await p.content.has(app1.layers[0]!.digest)).toBe(false);
    expect(readFileSync(join(r.layers[1]!, 'app'), 'utf8')).toBe('one');
    expect(r.reference).toBe(`${REGISTRY}/${repo}@${app1.digest}`);
  });

  it('pulls the requested platform out of an index', async () => {
    const amd = await pushImage(repo, 'multi-amd', [await makeLayer([{ name: 'arch', content: 'amd64' }])]);
    const arm = await pushImage(repo, 'multi-arm', [await makeLayer([{ name: 'arch', content: 'arm64' }])], { architecture: 'arm64' });
    const index = await pushIndex(repo, 'multi', [
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
      { image: arm, platform: { os: 'linux', architecture: 'arm64' } },
    ]);
    const p = puller(join(tmp, 'multi'));
    const def = await p.pull(`${REGISTRY}/${repo}:multi`);
    expect(def.digest).toBe(amd.digest);
    expect(def.indexDigest).toBe(index);
    const a = await p.pull(`${REGISTRY}/${repo}:multi`, { platform: { os: 'linux', architecture: 'arm64' } });
    expect(a.digest).toBe(arm.digest);
    expect(a.platform.architecture).toBe('arm64');
    expect(readFileSync(join(a.layers[0]!, 'arch'), 'utf8')).toBe('arm64');
    expect((await p.images.get(arm.digest))?.indexDigest).toBe(index);
  });

  it('shares one download between concurrent pulls of the same image', async () => {
    const p = puller(join(tmp, 'concurrent'));
    const before = proxy.requests.length;
    const [a, b] = await Promise.all([p.pull(`${proxy.host}/${repo}:big`), p.pull(`${proxy.host}/${repo}:big`)]);
    expect(a.layers).toEqual(b.layers);
    const gets = proxy.requests.slice(before).filter((q) => q.url.endsWith(`/blobs/${big.layers[0]!.digest}`));
    expect(gets).toHaveLength(1);
    expect(a.bytesFetched + b.bytesFetched).toBe(big.layers[0]!.size);
  });

  it('reports throttled per-layer progress', async () => {
    const events: PullProgress[] = [];
    let clock = 0;
    const p = puller(join(tmp, 'progress'), { progressIntervalMs: 1000, now: () => clock });
    await p.pull(`${REGISTRY}/${repo}:big`, {
      onProgress: (e) => {
        events.push(e);
        clock += 400; // every event advances the fake clock: throttle lets ~1 in 3 through
      },
    });
    const layer = big.layers[0]!;
    const mine = events.filter((e) => e.layer === layer.digest);
    expect(mine.length).toBeGreaterThan(1);
    expect(mine.length).toBeLessThan(40); // ~3 MB in 64 KiB chunks would be ~50 unthrottled
    expect(mine.every((e) => e.total === layer.size && e.done <= e.total)).toBe(true);
    expect(mine.map((e) => e.done)).toEqual([...mine.map((e) => e.done)].sort((x, y) => x - y));
    expect(mine[mine.length - 1]).toEqual({ layer: layer.digest, done: layer.size, total: layer.size, status: 'done' });
    const again: PullProgress[] = [];
    await p.pull(`${REGISTRY}/${repo}:big`, { onProgress: (e) => again.push(e) });
    expect(again).toEqual([{ layer: layer.digest, done: layer.size, total: layer.size, status: 'exists' }]);
  });

  it('re-unpacks a removed snapshot from the stored blob without downloading', async () => {
    const root = join(tmp, 'reunpack');
    const p = puller(root, { keepLayerBlobs: true });
    const r = await p.pull(`${proxy.host}/${repo}:app1`);
    await p.snapshotter.removeSnapshot(r.chainIds[1]!);
    const before = proxy.requests.length;
    const statuses: string[] = [];
    const again = await p.pull(`${proxy.host}/${repo}:app1`, { onProgress: (e) => statuses.push(e.status) });
    expect(again.fetchedLayers).toEqual([]);
    expect(blobRequests({ ...proxy, requests: proxy.requests.slice(before) }, app1.layers.map((l) => l.digest))).toEqual([]);
    expect(statuses).toContain('unpacking-local');
    expect(readFileSync(join(again.layers[1]!, 'app'), 'utf8')).toBe('one');
  });

  it('restarts a layer whose connection drops mid-body, and gives up after bounded retries', async () => {
    const layer = big.layers[0]!;
    let cuts = 1;
    const flaky = await startProxy(REGISTRY, {
      intercept: (req, res) => {
        if (!req.url?.endsWith(`/blobs/${layer.digest}`) || cuts <= 0) return false;
        cuts--;
        res.writeHead(200, { 'content-length': String(layer.size), 'content-type': 'application/octet-stream' });
        res.write(layer.blob.subarray(0, 100_000), () => res.socket?.destroy());
        return true;
      },
    });
    try {
      const slept: number[] = [];
      const p = puller(join(tmp, 'flaky'), { layerRetryDelayMs: 7, sleep: async (ms) => void slept.push(ms) });
      const r = await p.pull(`${flaky.host}/${repo}:big`);
      expect(r.fetchedLayers).toEqual([layer.digest]);
      expect(slept).toEqual([7]);
      expect(flaky.requests.filter((q) => q.url.endsWith(`/blobs/${layer.digest}`))).toHaveLength(2);
      expect(lstatSync(join(r.layers[0]!, 'blob.bin')).size).toBe(3 * 1024 * 1024);

      cuts = 10;
      const p2 = puller(join(tmp, 'flaky2'), { layerRetries: 1, layerRetryDelayMs: 1 });
      const err = await p2.pull(`${flaky.host}/${repo}:big`).catch((e) => e);
      expect(err).toBeInstanceOf(RegistryUnavailableError);
      expect(err.message).toMatch(/failed 2 times/);
      expect(readdirSync(join(tmp, 'flaky2', 'snapshots', '.staging'))).toEqual([]);
    } finally {
      await flaky.close();
    }
  });

  it('fails a layer whose decode worker dies mid-download (the worker was downloading it), and the next pull gets a new worker', async () => {
    const layer = big.layers[0]!;
    let sent!: () => void;
    const started = new Promise<void>((r) => (sent = r));
    const stalled = await startProxy(REGISTRY, {
      intercept: (req, res) => {
        if (!req.url?.endsWith(`/blobs/${layer.digest}`)) return false;
        res.writeHead(200, { 'content-length': String(layer.size), 'content-type': 'application/octet-stream' });
        res.write(layer.blob.subarray(0, 1_000_000), () => sent()); // then nothing: the body stays open
        return true;
      },
    });
    try {
      const root = join(tmp, 'killed');
      const pulling = puller(root).pull(`${stalled.host}/${repo}:big`).catch((e: unknown) => e);
      await started;
      await LayerUnpacker.closeWorker({ force: true });
      const err = (await pulling) as Error;
      expect(err).toBeInstanceOf(Error);
      expect(err.message).toMatch(/decode worker/);
      expect(readdirSync(join(root, 'snapshots', '.staging'))).toEqual([]);
      const r = await puller(join(tmp, 'after-kill')).pull(`${proxy.host}/${repo}:big`);
      expect(r.fetchedLayers).toEqual([layer.digest]);
    } finally {
      await stalled.close();
    }
  });

  it('rejects a corrupted blob and leaves nothing behind', async () => {
    const target = app2.layers[1]!.digest;
    const corrupt = await startProxy(REGISTRY, {
      transform: (req, chunk, offset) => {
        if (!req.url?.endsWith(`/blobs/${target}`) || offset > 100 || offset + chunk.length <= 100) return chunk;
        const out = Buffer.from(chunk);
        out[100 - offset]! ^= 0xff; // one wrong byte
        return out;
      },
    });
    try {
      const root = join(tmp, 'corrupt');
      const p = puller(root, { keepLayerBlobs: true });
      const err = await p.pull(`${corrupt.host}/${repo}:app2`).catch((e) => e);
      expect(err).toBeInstanceOf(DigestMismatchError);
      expect(err.expected).toBe(target);
      expect(await p.content.has(target)).toBe(false);
      expect(readdirSync(join(root, 'ingest'))).toEqual([]);
      expect(readdirSync(join(root, 'snapshots', '.staging'))).toEqual([]);
      const committed = (await p.snapshotter.list()).map((s) => s.layerDigest);
      expect(committed).not.toContain(target);
      expect(await p.images.get(app2.digest)).toBeUndefined();
    } finally {
      await corrupt.close();
    }
  });

  it('produces the right merged view through a real overlay mount (whiteouts, opaque dirs)', async () => {
    const root = join(tmp, 'overlay');
    const p = puller(root);
    const r = await p.pull(`${REGISTRY}/${repo}:layered`);
    expect(r.digest).toBe(layered.digest);
    const m = await p.snapshotter.prepare('replica-1', r.chainIds);
    expect(m.lowerdirs).toEqual([...r.layers].reverse());
    const target = join(tmp, 'rootfs');
    mkdirSync(target);
    await mountOverlay(m, target);
    mounted.push(target);
    try {
      expect(existsSync(join(target, 'etc/motd'))).toBe(false);
      expect(readFileSync(join(target, 'etc/keep'), 'utf8')).toBe('kept');
      expect(readdirSync(join(target, 'var/cache'))).toEqual(['c']);
      expect(readFileSync(join(target, 'opt/x'), 'utf8')).toBe('x');
      expect(readFileSync(join(target, 'new'), 'utf8')).toBe('top');
      writeFileSync(join(target, 'etc/keep'), 'changed');
    } finally {
      await unmountOverlay(target);
      mounted.pop();
    }
    // Writes land in the container's upper dir; the shared snapshot is untouched.
    expect(readFileSync(join(m.upperdir, 'etc/keep'), 'utf8')).toBe('changed');
    expect(readFileSync(join(r.layers[0]!, 'etc/keep'), 'utf8')).toBe('kept');
    expect(lstatSync(join(r.layers[1]!, 'etc/motd')).isCharacterDevice()).toBe(true);
    await expect(p.snapshotter.prepare('replica-1', r.chainIds)).rejects.toThrow(/already exists/);
    expect((await p.snapshotter.mounts('replica-1')).options).toEqual(m.options);
    await p.snapshotter.remove('replica-1');
    expect(existsSync(join(root, 'active', 'replica-1'))).toBe(false);
  });

  it('prepares a replica root filesystem once: a second prepareRootfs (an agent restart) returns the same view with its writes', async () => {
    const root = join(tmp, 'rootfs-api');
    const p = puller(root);
    const r = await p.pull(`${REGISTRY}/${repo}:layered`);
    const m = await p.prepareRootfs('replica-2', r.chainIds);
    expect(m.lowerdirs).toEqual([...r.layers].reverse());
    writeFileSync(join(m.upperdir, 'written'), 'kept across restarts');
    const restarted = puller(root);
    const again = await restarted.prepareRootfs('replica-2', r.chainIds);
    expect(again).toEqual(m);
    expect(readFileSync(join(again.upperdir, 'written'), 'utf8')).toBe('kept across restarts');
    expect((await restarted.gcState()).active.map((a) => a.key)).toEqual(['replica-2']);
    await restarted.releaseRootfs('replica-2');
    await restarted.releaseRootfs('replica-2'); // twice is fine
    expect(existsSync(m.upperdir)).toBe(false);
    expect((await restarted.gcState()).active).toEqual([]);
  });

  it('collects garbage only above the threshold and keeps what is needed', async () => {
    const root = join(tmp, 'gc');
    const p = puller(root, { keepLayerBlobs: true });
    const r1 = await p.pull(`${REGISTRY}/${repo}:app1`);
    const r2 = await p.pull(`${REGISTRY}/${repo}:app2`);
    const idle = await p.collectGarbage({ keep: [], thresholdBytes: 1024 ** 3 });
    expect(idle.triggered).toBe(false);
    expect((await p.snapshotter.list()).length).toBe(3);

    await p.snapshotter.prepare('running', r2.chainIds); // a live container pins app2's snapshots
    const plan = await p.collectGarbage({ keep: [r1.digest], thresholdBytes: 0 });
    expect(plan.triggered).toBe(true);
    expect(plan.removeImages).toEqual([r2.digest]);
    expect(plan.removeSnapshots).toEqual([]);
    expect(await p.content.has(app2.layers[1]!.digest)).toBe(false);
    expect(await p.content.has(app2.digest)).toBe(false);
    expect(await p.content.has(app1.layers[1]!.digest)).toBe(true);
    expect(await p.content.has(app1.layers[0]!.digest)).toBe(true); // shared base

    await p.snapshotter.remove('running');
    const plan2 = await p.collectGarbage({ keep: [r1.digest], thresholdBytes: 0 });
    expect(plan2.removeSnapshots).toEqual([r2.chainIds[1]]);
    expect(existsSync(r2.layers[1]!)).toBe(false);
    expect(existsSync(r1.layers[0]!)).toBe(true);
    expect(readFileSync(join(r1.layers[1]!, 'app'), 'utf8')).toBe('one');
    const plan3 = await p.collectGarbage({ keep: [r1.digest], thresholdBytes: 0 });
    expect(plan3.removeBlobs).toEqual([]);
    expect(plan3.removeSnapshots).toEqual([]);
  });

  it('refuses a hostile layer pulled from the registry and keeps the host untouched', async () => {
    const sentinel = join(tmp, 'host');
    mkdirSync(sentinel);
    writeFileSync(join(sentinel, 'passwd'), 'root');
    const hostile = await pushImage(repo, 'hostile', [
      await makeLayer([
        { name: 'etc', type: 'symlink', linkname: sentinel },
        { name: 'etc/passwd', content: 'pwned' },
      ]),
    ]);
    const p = puller(join(tmp, 'hostile'));
    const err = await p.pull(parseReference(`${REGISTRY}/${repo}:hostile`)).catch((e) => e);
    expect(err.code).toBe('LAYER_REFUSED');
    expect(err.layerDigest).toBe(hostile.layers[0]!.digest);
    expect(err.entry).toBe('etc/passwd');
    expect(readFileSync(join(sentinel, 'passwd'), 'utf8')).toBe('root');
    expect(await p.snapshotter.list()).toEqual([]);
    expect(readdirSync(join(tmp, 'hostile', 'snapshots', '.staging'))).toEqual([]);
  });
});
