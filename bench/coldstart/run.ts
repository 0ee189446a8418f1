/**
 * First-request latency from zero replicas, through the whole system (api, scheduler, gateway, one runc
 * agent), image already cached on the node after the first round:
 *   node -r @swc-node/register bench/coldstart/run.ts [--rounds 30]
 * Each round waits until the autoscaler (short windows) has taken the service back to zero and no replica
 * is left running, then times one GET through the gateway (held → wake → replica READY → forwarded). Needs root, runc, CNI,
 * Postgres, Redis and the fixture registry, like the e2e tests.
 */
import http from 'node:http';
import os from 'node:os';
import { Client } from 'pg';
import Redis from 'ioredis';
import { api, startSystem } from '../../test/support/system';
import { fixtureImage } from '../../test/support/env';
import { standInAutoscalerIfMissing } from '../../test/e2e/gateway/stand-in-autoscaler';

const args = process.argv.slice(2);
const ROUNDS = Number(args[args.indexOf('--rounds') + 1] || 30);

function get(port: number, host: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host }, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(what: string, fn: () => Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];

async function main() {
  // Short autoscaler windows: the autoscaler itself takes the service back to zero between rounds.
  const decider = { stableWindowMs: 2000, panicWindowMs: 1000, panicThreshold: 2, maxScaleDownRate: 2, maxScaleUpRate: 1000, scaleToZeroGraceMs: 500 };
  const sys = await startSystem({
    agents: 1,
    env: {
      BERTH_AUTOSCALER_TICK_MS: '250',
      BERTH_AUTOSCALER_STABLE_WINDOW_MS: String(decider.stableWindowMs),
      BERTH_AUTOSCALER_PANIC_WINDOW_MS: String(decider.panicWindowMs),
      BERTH_AUTOSCALER_SCALE_TO_ZERO_GRACE_MS: String(decider.scaleToZeroGraceMs),
      BERTH_GATEWAY_CONCURRENCY_REPORT_MS: '250',
      BERTH_GATEWAY_HOLD_TIMEOUT_MS: '30000',
    },
  });
  const standIn = await standInAutoscalerIfMissing(sys, decider);
  const db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
  const redis = new Redis(sys.redisUrl);
  const call = (m: string, p: string, b?: unknown) => api(sys.apiUrl, m, p, b, sys.adminToken, sys.projectSlug);
  const host = `cs.${sys.projectSlug}.localhost`;
  const samples: number[] = [];
  const statuses: number[] = [];
  /** Per round, ms: request → replica row created (wake, autoscaler, placement), → container started (agent), → READY (probe), → answer (route publish, gateway forward). */
  const phases: { placed: number; started: number; ready: number; forwarded: number }[] = [];
  try {
    await call('POST', '/v1/services', { name: 'cs', image: fixtureImage('web:v1'), port: 8080, scaling: { min: 0, max: 1, targetConcurrency: 100 } });
    const id = (await db.query<{ id: string }>(`select id from "Service" where name = 'cs'`)).rows[0].id;
    await until('route entry', async () => (await redis.hexists('berth:routes', `${sys.projectSlug}/cs`)) === 1, 30_000);
    // Warm the image cache once (not measured).
    statuses.push(await get(sys.gatewayPort, host, '/'));
    for (let i = 0; i < ROUNDS; i++) {
      await until(
        'no replica running',
        async () =>
          Number(
            (await db.query<{ n: string }>(`select count(*) n from "Replica" where "serviceId" = $1 and state not in ('STOPPED','FAILED','LOST','EXITED')`, [id])).rows[0].n,
          ) === 0,
        60_000,
      );
      await until(
        'route at zero',
        async () => {
          const e = JSON.parse((await redis.hget('berth:routes', `${sys.projectSlug}/cs`)) ?? 'null');
          return e !== null && e.desiredReplicas === 0 && e.endpoints.length === 0;
        },
        30_000,
      );
      const wall0 = Date.now();
      const t0 = performance.now();
      statuses.push(await get(sys.gatewayPort, host, '/'));
      const total = performance.now() - t0;
      samples.push(total);
      // Where the time went, from the replica's own timestamps (same clock: one machine).
      const r = (
        await db.query<{ createdAt: Date; startedAt: Date | null; readyAt: Date | null }>(
          `select "createdAt", "startedAt", "readyAt" from "Replica" where "serviceId" = $1 and "createdAt" >= $2 order by "createdAt" limit 1`,
          [id, new Date(wall0 - 5)],
        )
      ).rows[0];
      if (r?.startedAt && r.readyAt) {
        const at = (d: Date) => d.getTime() - wall0;
        phases.push({ placed: at(r.createdAt), started: at(r.startedAt) - at(r.createdAt), ready: at(r.readyAt) - at(r.startedAt), forwarded: total - at(r.readyAt) });
      }
      const ph = phases[phases.length - 1];
      process.stderr.write(
        `round ${i + 1}/${ROUNDS}: ${total.toFixed(0)} ms (status ${statuses[statuses.length - 1]})` +
          (ph ? ` = placed ${ph.placed} + started ${ph.started} + ready ${ph.ready} + forwarded ${ph.forwarded.toFixed(0)}` : '') +
          '\n',
      );
    }
  } finally {
    // Let the system stop its own containers before the harness tears it down.
    await call('DELETE', '/v1/services/cs').catch(() => undefined);
    await until(
      'replicas stopped',
      async () => Number((await db.query<{ n: string }>(`select count(*) n from "Replica" where state not in ('STOPPED','FAILED','LOST','EXITED')`)).rows[0].n) === 0,
      45_000,
    ).catch((e: Error) => console.error(e.message));
    await standIn?.stop();
    await db.end();
    await redis.quit();
    await sys.stop();
  }
  const sorted = [...samples].sort((a, b) => a - b);
  console.log(`\n### Cold start from zero (${os.cpus().length} cores, ${samples.length} rounds, image cached, web:v1 busybox httpd, runc + CNI)\n`);
  console.log('| metric | ms |');
  console.log('|---|---:|');
  console.log(`| p50 | ${pct(sorted, 50).toFixed(0)} |`);
  console.log(`| p99 | ${pct(sorted, 99).toFixed(0)} |`);
  console.log(`| min | ${sorted[0].toFixed(0)} |`);
  console.log(`| max | ${sorted[sorted.length - 1].toFixed(0)} |`);
  console.log(`| non-200 answers | ${statuses.filter((s) => s !== 200).length} |`);
  if (phases.length > 0) {
    const med = (k: keyof (typeof phases)[number]) => [...phases.map((p) => p[k])].sort((a, b) => a - b)[Math.floor(phases.length / 2)].toFixed(0);
    console.log('\n| phase (median over rounds) | ms |');
    console.log('|---|---:|');
    console.log(`| request → replica placed (wake, autoscaler, reconcile) | ${med('placed')} |`);
    console.log(`| placed → container started (agent: start job, rootfs, CNI, runc) | ${med('started')} |`);
    console.log(`| started → READY (readiness probe, report) | ${med('ready')} |`);
    console.log(`| READY → answer (route publish, gateway forward, replica answers) | ${med('forwarded')} |`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
