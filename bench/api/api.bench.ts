/**
 * `npm run bench:api` — throughput and latency of the api on loopback, printed as a markdown table.
 *
 * Boots the api in this process (same pipeline as main.ts) against its own Postgres database,
 * Redis and the local registry, creates services, then drives it from separate processes:
 *   - wrk, 50 connections, max throughput: GET /v1/services/:name and POST /v1/services/:name/deployments
 *     (each deploy resolves the tag at the registry, writes a revision + audit event, enqueues reconcile)
 *   - a fixed-rate open-loop generator at 500 req/s (bench/api/fixed-rate.ts) for GET service.
 * Env: BERTH_BENCH_SECONDS (default 10), BERTH_BENCH_RATE (default 500).
 */
import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import crypto from 'node:crypto';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { NestFactory } from '@nestjs/core';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import pino from 'pino';
import { Client } from 'pg';
import { QueueName } from '@berth/contracts';
import { migrateDeploy } from '@berth/db/migrate';
import { AppModule } from '../../apps/api/src/app.module';
import { apiConfigSchema } from '../../apps/api/src/config';
import { configureApp } from '../../apps/api/src/configure-app';
import { bootstrapAdmin } from '../../apps/api/src/bootstrap/bootstrap-admin';
import { UserRepository } from '@berth/db';
import { makeLayer, pushImage, REGISTRY } from '../../test/integration/oci/helpers/image-builder';

const SECONDS = Number(process.env.BERTH_BENCH_SECONDS ?? 10);
const RATE = Number(process.env.BERTH_BENCH_RATE ?? 500);
const SERVICES = 10;

interface Row {
  scenario: string;
  rps: number;
  p50: number;
  p90?: number;
  p99: number;
  errors: number;
}

function parseWrk(out: string): Omit<Row, 'scenario'> {
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1]);
  const pct = (p: string) => {
    const m = new RegExp(`\\s${p}%\\s+([\\d.]+)(us|ms|s)`).exec(out);
    if (!m) return NaN;
    const v = Number(m[1]);
    return m[2] === 'us' ? v / 1000 : m[2] === 's' ? v * 1000 : v;
  };
  const json = /JSON(\{.*\})/.exec(out)?.[1];
  const extra = json ? (JSON.parse(json) as { errors: number; non2xx: number }) : { errors: 0, non2xx: Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0) };
  return { rps, p50: pct('50'), p90: pct('90'), p99: pct('99'), errors: extra.errors + extra.non2xx };
}

async function main() {
  const databaseUrl = 'postgresql://postgres@127.0.0.1:5432/berth_api_bench';
  await migrateDeploy(databaseUrl);
  const pg = new Client({ connectionString: databaseUrl });
  await pg.connect();
  const { rows } = await pg.query<{ tablename: string }>(`select tablename from pg_tables where schemaname='public' and tablename <> '_prisma_migrations'`);
  await pg.query(`truncate ${rows.map((r) => `"${r.tablename}"`).join(', ')} restart identity cascade`);
  await pg.end();

  const prefix = `berth-api-bench-${crypto.randomBytes(3).toString('hex')}`;
  const config = apiConfigSchema.parse({
    NODE_ENV: 'test',
    DATABASE_URL: databaseUrl,
    BERTH_QUEUE_PREFIX: prefix,
    BERTH_API_ACCESS_LOG: 'false',
    LOG_LEVEL: 'warn',
  });
  const app = await NestFactory.create(AppModule.forRoot(config, { secretKey: crypto.randomBytes(32) }), { bodyParser: false, logger: false });
  configureApp(app, config, pino({ level: 'warn' }));
  await app.listen(0, '127.0.0.1');
  const base = `http://127.0.0.1:${(app.getHttpServer().address() as AddressInfo).port}`;
  const boot = (await bootstrapAdmin(app.get(UserRepository), { email: 'bench@example.com', password: 'bench-password' }))!;
  const auth = { authorization: `Bearer ${boot.token}`, 'content-type': 'application/json' };

  const repo = `berth-api-bench/web-${crypto.randomBytes(3).toString('hex')}`;
  await pushImage(repo, 'v1', [await makeLayer([{ name: 'www/index.html', content: 'bench' }])]);
  const image = `${REGISTRY}/${repo}:v1`;
  for (let i = 0; i < SERVICES; i++) {
    const r = await fetch(`${base}/v1/services`, { method: 'POST', headers: auth, body: JSON.stringify({ name: `bench-${i}`, image }) });
    if (r.status !== 201) throw new Error(`create service: ${r.status} ${await r.text()}`);
  }

  const results: Row[] = [];
  // Asynchronous on purpose: the api runs in this process and must keep serving while the load runs.
  const run = promisify(execFile);
  const wrk = async (args: string[], env: Record<string, string> = {}) =>
    (await run('wrk', args, { encoding: 'utf8', env: { ...process.env, ...env }, maxBuffer: 1 << 24 })).stdout;

  const warm = await wrk(['-t2', '-c10', '-d2s', '-H', `Authorization: Bearer ${boot.token}`, `${base}/v1/services/bench-0`]);
  void warm;
  const serial = await wrk(['-t1', '-c1', `-d${Math.max(2, Math.round(SECONDS / 2))}s`, '--latency', '--timeout', '10s', '-H', `Authorization: Bearer ${boot.token}`, `${base}/v1/services/bench-0`]);
  results.push({ scenario: 'GET /v1/services/:name — wrk, 1 conn (per-request cost)', ...parseWrk(serial) });
  const get = await wrk(['-t2', '-c50', '--timeout', '10s', `-d${SECONDS}s`, '--latency', '-H', `Authorization: Bearer ${boot.token}`, `${base}/v1/services/bench-0`]);
  results.push({ scenario: 'GET /v1/services/:name — wrk, 50 conns, max rate', ...parseWrk(get) });

  const fixed = await run(process.execPath, ['-r', '@swc-node/register', path.join(__dirname, 'fixed-rate.ts'), `${base}/v1/services/bench-0`, String(RATE), String(SECONDS), boot.token], {
    encoding: 'utf8',
  });
  const f = JSON.parse(fixed.stdout.trim().split('\n').at(-1)!);
  results.push({ scenario: `GET /v1/services/:name — fixed ${RATE} req/s, open loop`, rps: f.rps, p50: f.p50, p90: f.p90, p99: f.p99, errors: f.errors });

  const post = await wrk(['-t2', '-c50', '--timeout', '10s', `-d${SECONDS}s`, '--latency', '-s', path.join(__dirname, 'deploy.lua'), base], {
    BERTH_BENCH_TOKEN: boot.token,
    BERTH_BENCH_IMAGE: image,
    BERTH_BENCH_SERVICES: String(SERVICES),
  });
  results.push({ scenario: `POST /v1/services/:name/deployments — wrk, 50 conns over ${SERVICES} services`, ...parseWrk(post) });

  // wrk stops on time but the api still works through queued deploys; let them finish before reading and closing.
  await new Promise((r) => setTimeout(r, 3000));
  const revisions = (await (await fetch(`${base}/v1/services/bench-1/revisions?limit=1`, { headers: auth })).json()) as { items?: { number: number }[] };
  const fmt = (n: number | undefined) => (n === undefined || Number.isNaN(n) ? '–' : n.toFixed(1));
  const lines = [
    `### Berth api on loopback (${new Date().toISOString().slice(0, 10)}, ${require('node:os').cpus().length} cores, ${SECONDS}s per run)`,
    '',
    '| scenario | req/s | p50 ms | p90 ms | p99 ms | errors/non-2xx |',
    '|---|---:|---:|---:|---:|---:|',
    ...results.map((r) => `| ${r.scenario} | ${r.rps.toFixed(0)} | ${fmt(r.p50)} | ${fmt(r.p90)} | ${fmt(r.p99)} | ${r.errors} |`),
    '',
    `Load average while running: ${require('node:os').loadavg().map((l: number) => l.toFixed(1)).join(' / ')} (other processes share these cores).`,
    `Deploys are real: bench-1 reached revision ${revisions.items?.[0]?.number ?? '?'} (each resolved ${image} at the registry).`,
  ];
  process.stdout.write(lines.join('\n') + '\n');

  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const q = new Queue(QueueName.Reconcile, { connection: redis, prefix });
  await q.obliterate({ force: true }).catch(() => undefined);
  await q.close();
  await redis.quit();
  await app.close();
}

main().then(
  () => process.exit(0),
  (e) => {
    process.stderr.write(`bench:api failed: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exit(1);
  },
);
