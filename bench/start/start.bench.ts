/**
 * Start latency: "start replica" (rootfs already prepared) → first successful HTTP response from
 * busybox httpd, through RuncRuntime.start, next to the raw floor measured in the same run:
 * `ip netns add` + CNI ADD + `runc run -d` with an identical config.json + first HTTP response.
 * Then N add/del cycles of the CNI network part with a leak count.
 *
 *   bench/start/run.sh [starts=50] [cniCycles=1000]
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildOciSpec, CniNetwork, ContainerSpec, RuncRuntime } from '@berth/runtime';
import { execFile } from '@berth/oci';
import { httpGet, prepareFixture } from '../../test/integration/runtime/fixture';

const STARTS = Number(process.argv[2] ?? 50);
const CNI_CYCLES = Number(process.argv[3] ?? 1000);
const PORT = 8080;

const dir = mkdtempSync('/var/tmp/berth-bench-start-');
const fixture = prepareFixture();
const network = new CniNetwork({ bridge: 'brtbench', subnet: '10.202.0.0/16', dataDir: join(dir, 'cni'), netnsPrefix: 'brtb-', networkName: 'brtbench' });
const runcRoot = '/run/berth-bench/runc';
const cgroupParent = '/berth-bench';
const runtime = new RuncRuntime({ stateDir: join(dir, 'state'), runcRoot, cgroupParent, network, rotateIntervalMs: 0 });

/** A mounted overlay rootfs (prepared before the clock starts, as the snapshotter would). */
function prepareRootfs(id: string): string {
  const base = join(dir, 'overlay', id);
  for (const d of ['upper', 'work', 'merged']) mkdirSync(join(base, d), { recursive: true });
  execFileSync('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${fixture.rootfs},upperdir=${base}/upper,workdir=${base}/work`, join(base, 'merged')]);
  return join(base, 'merged');
}
function releaseRootfs(id: string) {
  execFileSync('umount', [join(dir, 'overlay', id, 'merged')]);
  rmSync(join(dir, 'overlay', id), { recursive: true, force: true });
}

function spec(id: string, rootfs: string): ContainerSpec {
  return { id, rootfs: { path: rootfs }, image: fixture.image, port: PORT, resources: { cpuMillis: 1000, memoryMiB: 64, pids: 64 }, hostname: id };
}

async function firstHttp(address: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      const r = await httpGet(`http://${address}:${PORT}/`, 1000);
      if (r.status === 200) return;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`no HTTP answer from ${address}`);
    await new Promise((r) => setTimeout(r, 1));
  }
}

/** `runc run -d` hands its stdio to the container, so wait for runc's exit, not for its pipes to close. */
function runDetached(args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn('runc', args, { stdio: 'ignore' });
    p.on('error', reject);
    p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`runc ${args.join(' ')} exited ${code}`))));
  });
}

async function floorOnce(i: number): Promise<number> {
  const id = `floor-${i}`;
  const rootfs = prepareRootfs(id);
  const bundle = join(dir, 'bundles', id);
  mkdirSync(bundle, { recursive: true });
  const oci = buildOciSpec({ spec: spec(id, rootfs), rootfsPath: rootfs, netnsPath: network.netnsPath(id), cgroupsPath: `${cgroupParent}/${id}`, user: { uid: 0, gid: 0 } });
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(oci));
  const t0 = performance.now();
  const att = await network.add(id);
  await runDetached(['--root', runcRoot, 'run', '-d', '--bundle', bundle, id]);
  await firstHttp(att.address);
  const ms = performance.now() - t0;
  await execFile('runc', ['--root', runcRoot, 'delete', '--force', id]);
  await network.del(id);
  releaseRootfs(id);
  return ms;
}

async function berthOnce(i: number): Promise<number> {
  const id = `berth-${i}`;
  const rootfs = prepareRootfs(id);
  const t0 = performance.now();
  const h = await runtime.start(spec(id, rootfs));
  await firstHttp(h.address!);
  const ms = performance.now() - t0;
  await runtime.destroy(id);
  releaseRootfs(id);
  return ms;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
}

async function main() {
  const floor: number[] = [];
  const berth: number[] = [];
  await floorOnce(-1); // warm caches (binaries, page cache, bridge creation)
  await berthOnce(-1);
  for (let i = 0; i < STARTS; i++) {
    // interleaved so both see the same machine conditions
    floor.push(await floorOnce(i));
    berth.push(await berthOnce(i));
  }
  const row = (name: string, xs: number[]) => `| ${name} | ${xs.length} | ${pct(xs, 50).toFixed(1)} | ${pct(xs, 90).toFixed(1)} | ${pct(xs, 99).toFixed(1)} |`;
  console.log(`\n### Start → first HTTP response (busybox httpd), ms\n`);
  console.log('| path | n | p50 | p90 | p99 |');
  console.log('|---|---|---|---|---|');
  console.log(row('floor: netns + CNI ADD + `runc run -d` + HTTP', floor));
  console.log(row('RuncRuntime.start + HTTP', berth));
  console.log(`\np50 ratio berth/floor: **${(pct(berth, 50) / pct(floor, 50)).toFixed(2)}×** (target ≤ 1.5×)`);

  if (CNI_CYCLES > 0) {
    const t0 = performance.now();
    for (let i = 0; i < CNI_CYCLES; i++) {
      await network.add(`cyc-${i}`);
      await network.del(`cyc-${i}`);
    }
    const per = (performance.now() - t0) / CNI_CYCLES;
    const netns = (await network.listNamespaces()).length;
    const veths = (await network.listBridgePorts()).length;
    const leases = (await network.listLeases()).length;
    console.log(`\n### CNI network part: ${CNI_CYCLES} add/del cycles\n`);
    console.log('| cycles | ms per cycle | leaked netns | leaked veths | leaked leases |');
    console.log('|---|---|---|---|---|');
    console.log(`| ${CNI_CYCLES} | ${per.toFixed(1)} | ${netns} | ${veths} | ${leases} |`);
  }
}

main()
  .catch((e) => {
    console.error(e);
    process.exitCode = 1;
  })
  .finally(async () => {
    runtime.close();
    await runtime.gc(() => false).catch(() => undefined);
    for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
      const mp = line.split(' ')[4];
      if (mp && mp.startsWith(dir)) execFileSync('umount', ['-l', mp]);
    }
    await network.removeBridge();
    for (const root of await runtime.cgroupRoots()) rmSync(join(root, cgroupParent), { recursive: true, force: true });
    execFileSync('sh', ['-c', `for d in /sys/fs/cgroup/*${cgroupParent}; do rmdir "$d" 2>/dev/null; done; true`]);
    rmSync('/run/berth-bench', { recursive: true, force: true });
    rmSync(dir, { recursive: true, force: true });
  });
