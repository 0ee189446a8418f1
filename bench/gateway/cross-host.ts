/**
 * What crossing hosts costs a request: the gateway on the replica's own host vs on another host of
 * the multi-host lab (test/support/lab.ts: hosts are network namespaces on a lab bridge, pod subnets
 * routed host-gw), same replica, one run:
 *   node -r @swc-node/register bench/gateway/cross-host.ts [--duration 10] [--connections 32] [--runs 3]
 * The replica is the web:v1 fixture (busybox httpd, a new upstream connection per request) with 1 CPU.
 * Two gateways with identical settings are started for the bench, one in the replica's host namespace
 * and one in the other host's; wrk runs in the root namespace against both (it crosses the lab
 * bridge to reach either gateway, so only the gateway → replica hop differs). Two more rows measure
 * the network alone: wrk straight to the replica from its own host and from the other host.
 * Needs what the lab needs (root, runc, CNI plugins, Postgres, Redis, registry) and wrk. Every process
 * it starts is stopped by PID and the lab is removed, also on failure.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { startLab, type Lab, type LabHost } from '../../test/support/lab';
import { api } from '../../test/support/system';

const exec = promisify(execFile);
const REPO = path.resolve(__dirname, '../..');
const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const DURATION = Number(arg('duration', '10'));
const CONNECTIONS = Number(arg('connections', '32'));
const RUNS = Number(arg('runs', '3'));
const GATEWAY_PORT = 8000;

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
}

const toMs = (v: string) => {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
};

/** wrk against `url` with a Host header, from the root namespace or from inside `netns`. */
async function wrk(url: string, host: string, connections: number, netns?: string): Promise<WrkResult> {
  const argv = ['-t1', `-c${connections}`, `-d${DURATION}s`, '--latency', '-H', `Host: ${host}`, url];
  const { stdout } = netns ? await exec('ip', ['netns', 'exec', netns, 'wrk', ...argv], { maxBuffer: 1 << 20 }) : await exec('wrk', argv, { maxBuffer: 1 << 20 });
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  return {
    rps: Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]),
    p50: toMs(/\s50%\s+(\S+)/.exec(stdout)?.[1] ?? ''),
    p99: toMs(/\s99%\s+(\S+)/.exec(stdout)?.[1] ?? ''),
    errors: non2xx + (sock ? sock.slice(1).reduce((s, v) => s + Number(v), 0) : 0),
  };
}

const children: ChildProcess[] = [];

/** A gateway process inside a host namespace, reading the lab's routing table. */
async function startGateway(lab: Lab, h: LabHost, logDir: string): Promise<string> {
  const redisUrl = new URL(lab.sys.redisUrl);
  redisUrl.hostname = lab.controlAddress;
  const out = fs.openSync(path.join(logDir, `gateway-${h.netns}.log`), 'a');
  const p = spawn('nsenter', [`--net=/run/netns/${h.netns}`, '--', process.execPath, '-r', '@swc-node/register', 'apps/gateway/src/main.ts'], {
    cwd: REPO,
    stdio: ['ignore', out, out],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      REDIS_URL: redisUrl.toString(),
      BERTH_GATEWAY_HOST: h.underlay,
      BERTH_GATEWAY_PORT: String(GATEWAY_PORT),
      BERTH_GATEWAY_OPS_PORT: '9100',
      BERTH_GATEWAY_ID: `bench-${h.netns}`,
    },
  });
  children.push(p);
  const url = `http://${h.underlay}:${GATEWAY_PORT}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (p.exitCode !== null) throw new Error(`gateway in ${h.netns} exited with ${p.exitCode} (log in ${logDir})`);
    try {
      if ((await fetch(`http://${h.underlay}:9100/readyz`, { signal: AbortSignal.timeout(1000) })).ok) return url;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`gateway in ${h.netns} not ready (log in ${logDir})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function stopChildren() {
  for (const c of children.reverse()) {
    if (c.exitCode !== null || c.signalCode !== null || !c.pid) continue;
    const exited = new Promise((r) => c.once('exit', r));
    process.kill(c.pid, 'SIGTERM');
    const t = setTimeout(() => c.pid && c.exitCode === null && process.kill(c.pid, 'SIGKILL'), 5000);
    await exited;
    clearTimeout(t);
  }
}

async function main() {
  const loadBefore = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const lab = await startLab({ hosts: 2 });
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-xhost-'));
  const db = new Client({ connectionString: lab.sys.databaseUrl });
  try {
    await db.connect();
    await api(
      lab.sys.apiUrl,
      'POST',
      '/v1/services',
      { name: 'bench', image: lab.image('web:v1'), port: 8080, scaling: { min: 1, max: 1 }, resources: { cpuMillis: 1000 } },
      lab.sys.adminToken,
      lab.sys.projectSlug,
    );
    let replica: { node: string; address: string; port: number } | undefined;
    for (let i = 0; i < 600 && !replica; i++) {
      const r = await db.query<{ node: string; address: string; port: number }>(
        `select n.name as node, r.address, r.port from "Replica" r join "Node" n on n.id = r."nodeId" where r.state = 'READY'`,
      );
      replica = r.rows[0];
      if (!replica) await new Promise((r) => setTimeout(r, 200));
    }
    if (!replica) throw new Error('the bench replica did not become READY');
    const same = lab.hosts.find((h) => h.nodeName === replica!.node)!;
    const other = lab.hosts.find((h) => h !== same)!;
    const host = `bench.${lab.sys.projectSlug}.localhost`;
    const sameUrl = await startGateway(lab, same, logDir);
    const otherUrl = await startGateway(lab, other, logDir);
    const direct = `http://${replica.address}:${replica.port}/`;
    const rows: [string, (c: number) => Promise<WrkResult>][] = [
      ['direct, from the replica’s host', (c) => wrk(direct, host, c, same.netns)],
      ['direct, from another host', (c) => wrk(direct, host, c, other.netns)],
      ['gateway on the replica’s host', (c) => wrk(`${sameUrl}/`, host, c)],
      ['gateway on another host', (c) => wrk(`${otherUrl}/`, host, c)],
    ];
    // Warm-up, then RUNS interleaved rounds: throughput at CONNECTIONS, latency at 1 connection.
    for (const [, run] of rows) await run(4).catch(() => undefined);
    const loaded: Record<string, WrkResult[]> = {};
    const single: Record<string, WrkResult[]> = {};
    for (let i = 0; i < RUNS; i++) {
      for (const [name, run] of rows) (loaded[name] ??= []).push(await run(CONNECTIONS));
      for (const [name, run] of rows) (single[name] ??= []).push(await run(1));
    }
    const median = (xs: number[]) => {
      const s = [...xs].sort((a, b) => a - b);
      return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
    };
    const sum = (rs: WrkResult[]): WrkResult => ({
      rps: median(rs.map((r) => r.rps)),
      p50: median(rs.map((r) => r.p50)),
      p99: median(rs.map((r) => r.p99)),
      errors: rs.reduce((s, r) => s + r.errors, 0),
    });
    console.log(
      `\n### Cross-host gateway benchmark (${os.cpus().length} cores, lab mode host-gw, wrk -t1 -d${DURATION}s, upstream: web:v1 replica, median of ${RUNS} runs, load before: ${loadBefore})\n`,
    );
    const summary: Record<string, { loaded: WrkResult; single: WrkResult }> = {};
    for (const [name] of rows) summary[name] = { loaded: sum(loaded[name]!), single: sum(single[name]!) };
    for (const [title, key] of [
      [`${CONNECTIONS} connections (throughput)`, 'loaded'],
      ['1 connection (per-request latency)', 'single'],
    ] as const) {
      console.log(`#### ${title}\n`);
      console.log('| target | req/s | p50 ms | p99 ms | errors |');
      console.log('|---|---:|---:|---:|---:|');
      for (const [name] of rows) {
        const r = summary[name]![key];
        console.log(`| ${name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.errors} |`);
      }
      console.log('');
    }
    const s = summary['gateway on the replica’s host']!;
    const x = summary['gateway on another host']!;
    console.log('| cross-host cost (gateway on another host vs on the replica’s host) | value |');
    console.log('|---|---:|');
    console.log(`| added p50, 1 connection | ${(x.single.p50 - s.single.p50).toFixed(3)} ms |`);
    console.log(`| added p50, ${CONNECTIONS} connections | ${(x.loaded.p50 - s.loaded.p50).toFixed(3)} ms |`);
    console.log(`| throughput, ${CONNECTIONS} connections | ${((x.loaded.rps / s.loaded.rps) * 100).toFixed(0)} % (${x.loaded.rps.toFixed(0)} vs ${s.loaded.rps.toFixed(0)} req/s) |`);
    console.log(`\nload after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  } finally {
    await stopChildren();
    await db.end().catch(() => undefined);
    const left = await lab.stop();
    if (left.some((l) => l.startsWith('container'))) console.error(`the lab's safety net removed: ${left.join(', ')}`);
    fs.rmSync(logDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
