/**
 * Measured pulls, two ways (run by bench/pull/run.sh after compiling with swc):
 *
 *   node pull.js <reference> <storeRoot>
 *     one pull in a fresh process; prints one JSON line: wall ms inside the process, peak RSS.
 *
 *   node pull.js --serve <warmupReference> [--preload <module>]...
 *     a long-lived process, like the agent: one RegistryClient for its whole life (the agent keeps
 *     one too), a warm-up pull of a small image first, then one pull per stdin line
 *     `<reference> <storeRoot>` into a fresh store, answering one JSON line each. This is the
 *     cost the agent pays per pull; node start-up and module loading are paid once per agent.
 *     `--preload` requires modules first (run.sh loads the agent's own modules, so the RSS figure
 *     includes what an agent process holds besides the puller).
 *
 * Peak RSS is VmHWM of the process (reset before each served pull via /proc/self/clear_refs).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ImagePuller, RegistryClient } from '@berth/oci';

function peakRssKb(): number {
  return Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1]);
}

/** CPU ms of the calling thread (the main thread: the one that must not be the bottleneck). */
function threadCpuMs(): number {
  const f = readFileSync('/proc/thread-self/stat', 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in clock ticks of 10 ms
}

async function once(ref: string, root: string, client?: RegistryClient) {
  const r0 = process.resourceUsage();
  const m0 = threadCpuMs();
  const t0 = process.hrtime.bigint();
  const puller = new ImagePuller(client ? { root, client } : { root });
  const result = await puller.pull(ref);
  await puller.close();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const r1 = process.resourceUsage();
  return {
    ms,
    cpuMs: Math.round((r1.userCPUTime + r1.systemCPUTime - r0.userCPUTime - r0.systemCPUTime) / 1000),
    mainThreadCpuMs: threadCpuMs() - m0,
    contextSwitches: r1.voluntaryContextSwitches + r1.involuntaryContextSwitches - r0.voluntaryContextSwitches - r0.involuntaryContextSwitches,
    peakRssKb: peakRssKb(), digest: result.digest, bytesFetched: result.bytesFetched, layers: result.layers.length };
}

async function serve(warmup: string): Promise<void> {
  const client = new RegistryClient();
  const warm = mkdtempSync(join(tmpdir(), 'berth-pull-warmup-'));
  try {
    await once(warmup, warm, client);
  } finally {
    rmSync(warm, { recursive: true, force: true });
  }
  process.stdout.write('ready\n');
  for await (const line of createInterface({ input: process.stdin })) {
    const [ref, root] = line.trim().split(/\s+/);
    if (!ref || !root) continue;
    writeFileSync('/proc/self/clear_refs', '5'); // resets VmHWM to the current RSS
    process.stdout.write(JSON.stringify(await once(ref, root, client)) + '\n');
  }
  await client.close();
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args[0] === '--serve') {
    if (!args[1]) throw new Error('usage: pull.js --serve <warmupReference> [--preload <module>]...');
    for (let i = 2; i < args.length; i += 2) {
      if (args[i] !== '--preload' || !args[i + 1]) throw new Error(`unexpected argument ${args[i]}`);
      require(args[i + 1]!);
    }
    return serve(args[1]);
  }
  const [ref, root] = args;
  if (!ref || !root) throw new Error('usage: pull.js <reference> <storeRoot> | pull.js --serve <warmupReference>');
  process.stdout.write(JSON.stringify(await once(ref, root)) + '\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
