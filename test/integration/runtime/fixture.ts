/**
 * Shared set-up for the runc integration tests: a busybox-static image built with umoci (cached
 * across runs under /var/tmp), per-test-file runtimes that use their own bridge, subnet, netns
 * prefix, cgroup parent and runc root (so files running in parallel never see each other), and a
 * leak report that must come back empty after teardown.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, promises as fs, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { CniNetwork, ContainerSpec, ImageConfig, RootfsMount, RuncRuntime } from '@berth/runtime';

const FIXTURE_DIR = '/var/tmp/berth-runtime-fixture/v3';
const BUSYBOX = '/bin/busybox';
const APPLETS = ['sh', 'httpd', 'sleep', 'cat', 'echo', 'hostname', 'sed', 'ls', 'id', 'true', 'false', 'touch', 'dd', 'head', 'grep', 'mount', 'wget', 'nc', 'ps'];

export interface Fixture {
  /** Unpacked rootfs of the image (read-only lower layer for per-container overlays). */
  rootfs: string;
  image: ImageConfig;
}

/** Builds (once) an OCI image with umoci: busybox-static, a static site in /www, httpd on $PORT. */
export function prepareFixture(): Fixture {
  const done = join(FIXTURE_DIR, 'image', 'rootfs');
  if (!existsSync(join(FIXTURE_DIR, 'config.json'))) {
    mkdirSync('/var/tmp/berth-runtime-fixture', { recursive: true });
    const tmp = mkdtempSync('/var/tmp/berth-runtime-fixture/build-');
    const layout = join(tmp, 'layout');
    const umoci = (...args: string[]) => execFileSync('umoci', args, { stdio: 'pipe' });
    umoci('init', '--layout', layout);
    umoci('new', '--image', `${layout}:web`);
    umoci('unpack', '--image', `${layout}:web`, join(tmp, 'build'));
    const root = join(tmp, 'build', 'rootfs');
    for (const d of ['bin', 'etc', 'www', 'tmp', 'proc', 'sys', 'dev']) mkdirSync(join(root, d), { recursive: true });
    execFileSync('cp', [BUSYBOX, join(root, 'bin', 'busybox')]);
    for (const a of APPLETS) execFileSync('ln', ['-sf', 'busybox', join(root, 'bin', a)]);
    writeFileSync(join(root, 'www', 'index.html'), 'hello from berth fixture\n');
    writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/www:/bin/sh\n');
    writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\napp:x:1000:\n');
    umoci('repack', '--image', `${layout}:web`, join(tmp, 'build'));
    umoci(
      'config', '--image', `${layout}:web`,
      '--config.entrypoint', '/bin/sh', '--config.entrypoint', '-c',
      '--config.cmd', 'exec httpd -f -p ${PORT:-8080} -h /www',
      '--config.env', 'GREETING=from-image', '--config.workingdir', '/www', '--config.exposedports', '8080/tcp',
    );
    umoci('unpack', '--image', `${layout}:web`, join(tmp, 'image'));
    // The image config as a puller would read it: index → manifest → config blob.
    const blob = (digest: string) => JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', digest.replace('sha256:', '')), 'utf8'));
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    const manifest = blob(index.manifests.find((m: { annotations?: Record<string, string> }) => m.annotations?.['org.opencontainers.image.ref.name'] === 'web').digest);
    writeFileSync(join(tmp, 'config.json'), JSON.stringify(blob(manifest.config.digest).config));
    try {
      renameSync(tmp, FIXTURE_DIR);
    } catch {
      rmSync(tmp, { recursive: true, force: true }); // another worker won the race
    }
  }
  if (!existsSync(done)) throw new Error(`fixture rootfs missing at ${done}`);
  return { rootfs: done, image: JSON.parse(readFileSync(join(FIXTURE_DIR, 'config.json'), 'utf8')) };
}

export interface TestEnv {
  runtime: RuncRuntime;
  network: CniNetwork;
  fixture: Fixture;
  dir: string;
  /** A spec for the fixture image with a private overlay rootfs. */
  spec(id: string, over?: Partial<ContainerSpec>): ContainerSpec;
  /** Destroys every container, removes the bridge and the cgroup parent, returns what leaked. */
  teardown(): Promise<string[]>;
}

/** `slot` (1..200) keeps bridge, subnet and names apart between test files. */
export function createTestEnv(tag: string, slot: number): TestEnv {
  const fixture = prepareFixture();
  const dir = mkdtempSync(`/var/tmp/berth-rt-${tag}-`);
  const network = new CniNetwork({
    bridge: `brt${slot}`,
    subnet: `10.201.${slot}.0/24`,
    dataDir: join(dir, 'cni'),
    netnsPrefix: `brt${slot}-`,
    networkName: `brt${slot}`,
  });
  const runtime = new RuncRuntime({
    stateDir: join(dir, 'state'),
    runcRoot: `/run/berth-test/${tag}`,
    cgroupParent: `/berth-test-${tag}`,
    network,
    rotateIntervalMs: 0,
  });
  const overlays = join(dir, 'overlay');
  return {
    runtime,
    network,
    fixture,
    dir,
    spec(id, over = {}) {
      const upper = join(overlays, id, 'upper');
      const work = join(overlays, id, 'work');
      rmSync(join(overlays, id), { recursive: true, force: true });
      mkdirSync(upper, { recursive: true });
      mkdirSync(work, { recursive: true });
      const mounts: RootfsMount[] = [
        { type: 'overlay', source: 'overlay', options: [`lowerdir=${fixture.rootfs}`, `upperdir=${upper}`, `workdir=${work}`] },
      ];
      return {
        id,
        rootfs: { mounts },
        image: fixture.image,
        port: 8080,
        resources: { cpuMillis: 500, memoryMiB: 64, pids: 64 },
        hostname: id,
        ...over,
      };
    },
    async teardown() {
      runtime.close();
      for (const c of await runtime.list().catch(() => [])) await runtime.destroy(c.id).catch(() => undefined);
      await runtime.gc(() => false).catch(() => undefined);
      const leaks = await leakReport(runtime, network);
      await network.removeBridge();
      await runtime.removeCgroupParent();
      await fs.rm(runtime.runcRoot, { recursive: true, force: true });
      await fs.rmdir('/run/berth-test').catch(() => undefined); // only once every test file is done with it
      await fs.rm(dir, { recursive: true, force: true });
      return leaks;
    },
  };
}

/** Everything of this runtime still present on the host: must be empty once all containers are destroyed. */
export async function leakReport(runtime: RuncRuntime, network: CniNetwork): Promise<string[]> {
  const leaks: string[] = [];
  for (const id of await network.listNamespaces()) leaks.push(`netns ${network.netnsName(id)}`);
  for (const port of await network.listBridgePorts()) leaks.push(`veth ${port} on ${network.bridge}`);
  for (const l of await network.listLeases()) leaks.push(`lease ${l.address} (${l.id})`);
  for (const root of await runtime.cgroupRoots()) {
    for (const e of await fs.readdir(join(root, runtime.cgroups.parentPath), { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) leaks.push(`cgroup ${join(root, runtime.cgroups.parentPath, e.name)}`);
    }
  }
  const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  for (const line of mountinfo.split('\n')) {
    const mp = line.split(' ')[4];
    if (mp && mp.startsWith(runtime.stateDir)) leaks.push(`mount ${mp}`);
  }
  const containers = await fs.readdir(join(runtime.stateDir, 'containers')).catch(() => []);
  for (const c of containers) leaks.push(`state dir ${c}`);
  const listed = execFileSync('runc', ['--root', runtime.runcRoot, 'list', '-q']).toString().trim();
  if (listed) leaks.push(`runc containers: ${listed.split('\n').join(', ')}`);
  return leaks;
}

export function httpGet(url: string, timeoutMs = 1000): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { timeout: timeoutMs, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

/** Polls `fn` until it returns a value or `timeoutMs` passes (bounded). */
export async function eventually<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 5000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`condition not met within ${timeoutMs} ms${lastError ? `: ${(lastError as Error).message}` : ''}`);
}
