/**
 * Gateway throughput and latency vs a direct connection and vs nginx, same upstream, one run:
 *   node -r @swc-node/register bench/gateway/run.ts [--duration 10] [--connections 32] [--upstream node|busybox]
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
const NGINX_WORKERS = arg('nginx-workers', '1');
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const HOST = 'bench.bench.localhost';

const children: ChildProcess[] = [];
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-bench-gw-'));

function start(cmd: string, argv: string[], env: NodeJS.ProcessEnv = process.env, log = 'child'): ChildProcess {
  const out = fs.openSync(path.join(tmp, `${log}.log`), 'a');
  const p = spawn(cmd, argv, { env, stdio: ['ignore', out, out], cwd: REPO });
  children.push(p);
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
}

const toMs = (v: string) => {
  const m = /^([\d.]+)(us|ms|s)$/.exec(v.trim());
  if (!m) return NaN;
  const n = Number(m[1]);
  return m[2] === 'us' ? n / 1000 : m[2] === 's' ? n * 1000 : n;
};

async function wrk(port: number, connections = CONNECTIONS): Promise<WrkResult> {
  const { stdout } = await exec('wrk', ['-t1', `-c${connections}`, `-d${DURATION}s`, '--latency', '-H', `Host: ${HOST}`, `http://127.0.0.1:${port}/`], {
    maxBuffer: 1 << 20,
  });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(stdout)?.[1]);
  const p50 = toMs(/\s50%\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const p99 = toMs(/\s99%\s+(\S+)/.exec(stdout)?.[1] ?? '');
  const non2xx = Number(/Non-2xx or 3xx responses:\s+(\d+)/.exec(stdout)?.[1] ?? 0);
  const sock = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(stdout);
  const errors = non2xx + (sock ? sock.slice(1).reduce((s, v) => s + Number(v), 0) : 0);
  return { rps, p50, p99, errors };
}

async function main() {
  const [upPort, gwPort, gwOps, nginxPort, minPort] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
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

  // Gateway.
  start(
    process.execPath,
    ['-r', '@swc-node/register', 'apps/gateway/src/main.ts'],
    {
      ...process.env,
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      REDIS_URL,
      BERTH_GATEWAY_PORT: String(gwPort),
      BERTH_GATEWAY_OPS_PORT: String(gwOps),
      BERTH_REDIS_KEY_PREFIX: prefix,
      BERTH_GATEWAY_ID: 'bench',
    },
    'gateway',
  );
  await waitHttp(gwPort, 'gateway');

  // nginx with a keep-alive upstream, as a child process of ours.
  const nginxPrefix = path.join(tmp, 'nginx');
  fs.mkdirSync(path.join(nginxPrefix, 'logs'), { recursive: true });
  const conf = path.join(nginxPrefix, 'nginx.conf');
  fs.writeFileSync(
    conf,
    `daemon off;
worker_processes ${NGINX_WORKERS};
pid ${nginxPrefix}/nginx.pid;
error_log ${nginxPrefix}/logs/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${nginxPrefix}/body;
  proxy_temp_path ${nginxPrefix}/proxy;
  upstream app { server 127.0.0.1:${upPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${nginxPort};
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
  start('nginx', ['-c', conf, '-p', nginxPrefix], process.env, 'nginx');
  await waitHttp(nginxPort, 'nginx');

  start(process.execPath, [path.join(__dirname, 'minimal-proxy.js'), String(upPort), String(minPort)], process.env, 'minimal');
  await waitHttp(minPort, 'minimal');

  // Warm-up, then the measured runs: throughput at CONNECTIONS, then per-request latency at 1 connection.
  const targets = { direct: upPort, gateway: gwPort, minimal: minPort, nginx: nginxPort };
  for (const p of Object.values(targets)) await exec('wrk', ['-t1', '-c8', '-d2s', '-H', `Host: ${HOST}`, `http://127.0.0.1:${p}/`]);
  const loaded: Record<string, WrkResult> = {};
  const single: Record<string, WrkResult> = {};
  for (const [name, p] of Object.entries(targets)) loaded[name] = await wrk(p);
  for (const [name, p] of Object.entries(targets)) single[name] = await wrk(p, 1);
  await redis.del(`${prefix}berth:routes`, `${prefix}berth:concurrency:bench`);
  await redis.zrem(`${prefix}berth:concurrency:gateways`, 'bench');
  await redis.quit();

  const names: Record<string, string> = {
    direct: 'direct to upstream',
    gateway: 'through berth gateway',
    minimal: 'minimal undici proxy (reference)',
    nginx: `through nginx (${NGINX_WORKERS} worker, keepalive upstream)`,
  };
  const row = (name: string, r: WrkResult) => `| ${names[name]} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(3)} | ${r.p99.toFixed(3)} | ${r.errors} |`;
  console.log(`\n### Gateway benchmark (${os.cpus().length} cores, wrk -t1 -d${DURATION}s, upstream: ${UPSTREAM})\n`);
  for (const [title, results] of [[`${CONNECTIONS} connections (throughput)`, loaded], ['1 connection (per-request latency)', single]] as const) {
    console.log(`#### ${title}\n`);
    console.log('| target | req/s | p50 ms | p99 ms | errors |');
    console.log('|---|---:|---:|---:|---:|');
    for (const name of Object.keys(targets)) console.log(row(name, results[name]));
    console.log('');
  }
  console.log('| check | value | target |');
  console.log('|---|---:|---|');
  console.log(`| gateway / nginx throughput (${CONNECTIONS} conns) | ${(loaded.gateway.rps / loaded.nginx.rps).toFixed(2)}× | ≥ 0.80× |`);
  console.log(`| gateway added p50 vs direct (1 conn) | ${(single.gateway.p50 - single.direct.p50).toFixed(3)} ms | ≤ 1 ms |`);
  console.log(`| gateway added p50 vs direct (${CONNECTIONS} conns) | ${(loaded.gateway.p50 - loaded.direct.p50).toFixed(3)} ms | ≤ 1 ms |`);
  console.log(`| nginx added p50 vs direct (1 conn) | ${(single.nginx.p50 - single.direct.p50).toFixed(3)} ms | (reference) |`);
}

async function stopAll() {
  for (const c of children.reverse()) {
    if (c.exitCode === null && c.pid) {
      try {
        process.kill(c.pid, 'SIGTERM');
      } catch {
        /* already gone */
      }
      await new Promise((r) => {
        const t = setTimeout(() => {
          if (c.exitCode === null && c.pid) process.kill(c.pid, 'SIGKILL');
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
