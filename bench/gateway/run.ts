/**
 * Gateway throughput and latency vs a direct connection and vs nginx, same upstream, one run:
 *   node -r @swc-node/register bench/gateway/run.ts [--duration 10] [--connections 32] [--upstream node|busybox]
 *     [--workers N (default: CPU count)] [--scheduling none|rr] [--runs 3]
 * The gateway and nginx each run twice: with 1 process (1 gateway process / 1 nginx worker) and with N
 * (BERTH_GATEWAY_WORKERS=N / worker_processes N), so each ratio compares equal process counts. Every
 * target is measured `--runs` times, interleaved, and the table shows medians.
 * Needs Redis (REDIS_URL, default 127.0.0.1:6379), wrk and nginx (Debian nginx-light). Every process it
 * starts is stopped by PID; temp files go under a fresh temp dir.
 */
import { ChildProcess, execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { freePort } from '../../test/support/net';

const exec = promisify(execFile);
const REPO = path.resolve(__dirname, '../..');
const args = process.argv.slice(2);
const arg = (name: string, def: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] ? args[i + 1] : def;
};
const DURATION = Number(arg('duration', '10'));
const CONNECTIONS = Number(arg('connections', '32'));
const UPSTREAM = arg('upstream', 'node');
const WORKERS = Number(arg('workers', String(os.availableParallelism())));
const SCHEDULING = arg('scheduling', 'none');
const RUNS = Number(arg('runs', '3'));
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const HOST = 'bench.bench.localhost';

const children: ChildProcess[] = [];
const pids: Record<string, number> = {};
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-gw-'));

function start(cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env, log = 'child'): ChildProcess {
  const out = fs.openSync(path.join(tmp, `${log}.log`), 'a');
  const p = spawn(cmd, argv, { env, stdio: ['ignore', out, out], cwd: REPO });
  children.push(p);
  if (p.pid) pids[log] = p.pid;
  p.once('error', (e) => {
    // e.g. nginx or wrk not installed (Debian: apt-get install nginx-light wrk)
    console.error(`could not start ${cmd}: ${e.message}`);
    void stopAll().then(() => process.exit(1));
  });
  return p;
}

async function waitHttp(port: number, host: string, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const r = await fetch(`http://127.0.0.1:${port}/`, { headers: { 'x-bench-host': host } });
      if (r.status < 500) return;
    } catch {
      /* not up yet */
    }
    if (Date.now() > deadline) throw new Error(`port ${port} did not answer within ${timeoutMs} ms (logs in ${tmp})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: number;
  /** CPU time (user + system) the target's processes spent per request, µs; NaN for the direct target's client. */
  cpuUs: number;
}

/**
 * CPU seconds used so far by a process and all its live descendants (nginx workers, cluster workers),
 * from /proc. Less sensitive to a busy machine than req/s: it is the cost of each request.
 */
function cpuSeconds(root: number): number {
  const tick = 100; // USER_HZ on Linux
  const parent = new Map<number, number>();
  const used = new Map<number, number>();
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      parent.set(Number(d), Number(f[1]));
      used.set(Number(d), (Number(f[11]) + Number(f[12])) / tick);
    } catch {
      /* exited */
    }
  }
  let total = 0;
  for (const [pid, cpu] of used) {
    for (let p: number | undefined = pid; p !== undefined && p > 1; p = parent.get(p)) {
      if (p === root) {
        total += cpu;
        break;
      }
    }
  }
  return total;
}

const toMs = (v: string) => {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
};

async function wrk(port: number, connections = CONNECTIONS, pid?: number): Promise<WrkResult> {
  const cpu0 = pid ? cpuSeconds(pid) : NaN;
  const { stdout } = await exec('wrk', ['-t1', `-c${connections}`, `-d${DURATION}s`, '--latency', '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/`], {
    maxBuffer: 1 << 20,
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p50 = toMs(/\s50%\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = non2xx + (sock ? sock.slice(1).reduce((s, v) => s + Number(v), 0) : 0);
  const requests = Number(/(\d+) requests in/.exec(stdout)?.[1]);
  const cpuUs = pid ? ((cpuSeconds(pid) - cpu0) / requests) * 1e6 : NaN;
  return { rps, p50, p99, errors, cpuUs };
}

async function main() {
  const loadBefore = os.loadavg().map((l) => l.toFixed(2)).join(' ');
  const [upPort, gwPort, gwOps, gwNPort, gwNOps, nginxPort, nginxNPort, minPort] = await Promise.all(Array.from({ length: 8 }, () => freePort()));
  const prefix = `bench-gw-${crypto.randomBytes(3).toString('hex')}:`;

  // Upstream.
  if (UPSTREAM === 'busybox') {
    const www = path.join(tmp, 'www');
    fs.mkdirSync(www);
    fs.writeFileSync(path.join(www, 'index.html'), 'x'.repeat(1024));
    start('busybox', ['httpd', '-f', '-p', `127.0.0.1:${upPort}`, '-h', www], process.env, 'upstream');
  } else {
    start(process.execPath, [path.join(__dirname, 'upstream.js'), String(upPort)], process.env, 'upstream');
  }
  await waitHttp(upPort, 'upstream');

  // Routing table entry, as the scheduler writes it.
  const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  const entry = {
    serviceId: 'bench-service',
    project: 'bench',
    service: 'bench',
    minScale: 1,
    maxScale: 1,
    targetConcurrency: 100,
    desiredReplicas: 1,
    endpoints: [{ replicaId: 'bench-replica', revisionId: 'bench-rev', address: '127.0.0.1', port: upPort }],
    updatedAt: new Date().toISOString(),
  };
  await redis.hset(`${prefix}berth:routes`, 'bench/bench', JSON.stringify(entry));

  // Gateways: one process, and WORKERS cluster workers.
  const startGateway = async (workers: number, port: number, ops: number) => {
    start(
      process.execPath,
      ['-r', '@swc-node/register', 'apps/gateway/src/main.ts'],
      {
        ...process.env,
        NODE_ENV: 'production',
        LOG_LEVEL: 'warn',
        REDIS_URL,
        BERTH_GATEWAY_PORT: String(port),
        BERTH_GATEWAY_OPS_PORT: String(ops),
        BERTH_REDIS_KEY_PREFIX: prefix,
        BERTH_GATEWAY_ID: `bench${workers}`,
        BERTH_GATEWAY_WORKERS: String(workers),
        BERTH_GATEWAY_SCHEDULING: SCHEDULING,
      },
      `gateway-${workers}`,
    );
    await waitHttp(port, 'gateway');
  };
  await startGateway(1, gwPort, gwOps);
  if (WORKERS > 1) await startGateway(WORKERS, gwNPort, gwNOps);

  // nginx with a keep-alive upstream, as a child process of ours: 1 worker, and WORKERS workers.
  const startNginx = async (workers: number, port: number) => {
    const nginxPrefix = path.join(tmp, `nginx-${workers}`);
    fs.mkdirSync(path.join(nginxPrefix, 'logs'), { recursive: true });
    const conf = path.join(nginxPrefix, 'nginx.conf');
    fs.writeFileSync(
      conf,
      `daemon off;
worker_processes ${workers};
pid ${nginxPrefix}/nginx.pid;
error_log ${nginxPrefix}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${nginxPrefix}/body;
  proxy_temp_path ${nginxPrefix}/proxy;
  upstream app { server 127.0.0.1:${upPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://app;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_buffering off;
    }
  }
}
`,
    );
    start('nginx', ['-c', conf, '-p', nginxPrefix], process.env, `nginx-${workers}`);
    await waitHttp(port, 'nginx');
  };
  await startNginx(1, nginxPort);
  if (WORKERS > 1) await startNginx(WORKERS, nginxNPort);

  start(process.execPath, [path.join(__dirname, 'minimal-proxy.js'), String(upPort), String(minPort)], process.env, 'minimal');
  await waitHttp(minPort, 'minimal');

  // Warm-up, then RUNS rounds (targets interleaved): throughput at CONNECTIONS, latency at 1 connection.
  const targets: Record<string, number> = { direct: upPort, gateway1: gwPort, nginx1: nginxPort };
  if (WORKERS > 1) Object.assign(targets, { gatewayN: gwNPort, nginxN: nginxNPort });
  targets.minimal = minPort;
  const pidOf: Record<string, number> = {
    direct: pids.upstream,
    gateway1: pids['gateway-1'],
    gatewayN: pids[`gateway-${WORKERS}`],
    nginx1: pids['nginx-1'],
    nginxN: pids[`nginx-${WORKERS}`],
    minimal: pids.minimal,
  };
  for (const p of Object.values(targets)) await exec('wrk', ['-t1', '-c8', '-d2s', '-H', `Host: ${HOST}`, `http://127.0.0.1:${p}/`]);
  const loadedRuns: Record<string, WrkResult[]> = {};
  const singleRuns: Record<string, WrkResult[]> = {};
  for (let run = 0; run < RUNS; run++) {
    for (const [name, p] of Object.entries(targets)) (loadedRuns[name] ??= []).push(await wrk(p, CONNECTIONS, pidOf[name]));
    for (const [name, p] of Object.entries(targets)) (singleRuns[name] ??= []).push(await wrk(p, 1, pidOf[name]));
  }
  // Stop the gateways first: they re-publish their concurrency keys every second while running.
  await stopAll();
  await redis.del(`${prefix}berth:routes`);
  const ids = (await redis.zrange(`${prefix}berth:concurrency:gateways`, 0, -1)) as string[];
  if (ids.length) await redis.del(...ids.map((id) => `${prefix}berth:concurrency:${id}`));
  await redis.del(`${prefix}berth:concurrency:gateways`);
  await redis.quit();

  const median = (xs: number[]) => {
    const s = [...xs].sort((a, b) => a - b);
    return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  };
  const summarize = (runs: Record<string, WrkResult[]>) =>
    Object.fromEntries(
      Object.entries(runs).map(([name, rs]) => [
        name,
        {
          rps: median(rs.map((r) => r.rps)),
          p50: median(rs.map((r) => r.p50)),
          p99: median(rs.map((r) => r.p99)),
          errors: rs.reduce((s, r) => s + r.errors, 0),
          cpuUs: median(rs.map((r) => r.cpuUs)),
        },
      ]),
    ) as Record<string, WrkResult>;
  const loaded = summarize(loadedRuns);
  const single = summarize(singleRuns);

  const names: Record<string, string> = {
    direct: 'direct to upstream',
    gateway1: 'berth gateway, 1 process',
    gatewayN: `berth gateway, ${WORKERS} workers (${SCHEDULING})`,
    nginx1: 'nginx, 1 worker',
    nginxN: `nginx, ${WORKERS} workers`,
    minimal: 'minimal undici proxy, 1 process (reference)',
  };
  const row = (name: string, r: WrkResult) => `| ${names[name]} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.cpuUs.toFixed(0)} | ${r.errors} |`;
  console.log(`\n### Gateway benchmark (${os.cpus().length} cores, wrk -t1 -d${DURATION}s, upstream: ${UPSTREAM}, median of ${RUNS} runs, load before: ${loadBefore})\n`);
  for (const [title, results] of [[`${CONNECTIONS} connections (throughput)`, loaded], ['1 connection (per-request latency)', single]] as const) {
    console.log(`#### ${title}\n`);
    console.log('| target | req/s | p50 ms | p99 ms | CPU µs/req | errors |');
    console.log('|---|---:|---:|---:|---:|---:|');
    for (const name of Object.keys(targets)) console.log(row(name, results[name]));
    console.log('');
  }
  const ratio = (a: string, b: string) => `${(loaded[a].rps / loaded[b].rps).toFixed(2)}×`;
  const added = (r: Record<string, WrkResult>, a: string) => `${(r[a].p50 - r.direct.p50).toFixed(3)} ms`;
  console.log('| check | value | target |');
  console.log('|---|---:|---|');
  console.log(`| gateway 1 process / nginx 1 worker, throughput (${CONNECTIONS} conns) | ${ratio('gateway1', 'nginx1')} | ≥ 0.80× |`);
  if (WORKERS > 1) {
    console.log(`| gateway ${WORKERS} workers / nginx ${WORKERS} workers, throughput (${CONNECTIONS} conns) | ${ratio('gatewayN', 'nginxN')} | ≥ 0.80× |`);
    console.log(`| gateway ${WORKERS} workers / nginx 1 worker, throughput (${CONNECTIONS} conns) | ${ratio('gatewayN', 'nginx1')} | (unequal processes) |`);
  }
  for (const g of WORKERS > 1 ? ['gateway1', 'gatewayN'] : ['gateway1']) {
    console.log(`| ${names[g]}: added p50 vs direct (1 conn) | ${added(single, g)} | ≤ 1 ms |`);
    console.log(`| ${names[g]}: added p50 vs direct (${CONNECTIONS} conns) | ${added(loaded, g)} | ≤ 1 ms |`);
  }
  console.log(`| nginx 1 worker: added p50 vs direct (1 conn) | ${added(single, 'nginx1')} | (reference) |`);
  console.log(`| nginx 1 worker: added p50 vs direct (${CONNECTIONS} conns) | ${added(loaded, 'nginx1')} | (reference) |`);
  console.log('\nCPU µs/req: CPU time of the target\'s processes (proxy only; for "direct", the upstream) per request.');
  console.log(`\nload after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
}

async function stopAll() {
  for (const c of [...children].reverse()) {
    if (c.exitCode === null && c.pid) {
      try {
        process.kill(c.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await new Promise((r) => {
        const t = setTimeout(() => {
          try {
            if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
          } catch {
            /* exited meanwhile */
          }
          r(undefined);
        }, 3000);
        c.once('exit', () => {
          clearTimeout(t);
          r(undefined);
        });
      });
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
}

main()
  .then(stopAll, async (e) => {
    console.error(e);
    await stopAll();
    process.exitCode = 1;
  })
  .catch(() => undefined);
