import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client } from 'pg';
import Redis from 'ioredis';
import { RunningSystem, api, startSystem } from '../../support/system';
import { fixtureImage } from '../../support/env';
import { closeClientAgent, request, sleep, waitFor } from '../../integration/gateway/upstreams';
import { standInAutoscalerIfMissing } from './stand-in-autoscaler';

/**
 * The gateway and autoscaler with the whole system: api, scheduler, gateway and one runc agent running
 * the fixture images. Short autoscaler windows so scale-up, scale-down and scale-to-zero fit in seconds.
 */
const exec = promisify(execFile);
const STABLE_MS = 6000;
const PANIC_MS = 2000;
const GRACE_MS = 3000;

let sys: RunningSystem;
let db: Client;
let redis: Redis;
/** Only when the scheduler process does not run the autoscaler yet (see beforeAll). */
let standIn: { stop(): Promise<void> } | null = null;

/** Runs a test body; on failure the error carries the tails of the system's logs. */
function withLogs(fn: () => Promise<void>): () => Promise<void> {
  return async () => {
    try {
      await fn();
    } catch (e) {
      const apps = ['scheduler', 'gateway', ...sys.agents.map((a) => `agent-${a.name}`)];
      const tails = apps.map((a) => `--- ${a}\n${sys.logs(a).split('\n').slice(-25).join('\n')}`).join('\n');
      const replicas = await db.query(`select r."serviceId", r.state, r.address, r."updatedAt" from "Replica" r order by r."createdAt"`).catch(() => ({ rows: [] }));
      const routes = await redis.hgetall('berth:routes').catch(() => ({}));
      (e as Error).message += `\nreplicas: ${JSON.stringify(replicas.rows)}\nroutes: ${JSON.stringify(routes)}\n${tails}`;
      throw e;
    }
  };
}

const call = (method: string, path: string, body?: unknown) => api(sys.apiUrl, method, path, body, sys.adminToken, sys.projectSlug);
const host = (service: string) => `${service}.${sys.projectSlug}.localhost`;
const get = (service: string, path = '/') => request(sys.gatewayPort, host(service), { path });

async function createService(name: string, image: string, scaling: { min: number; max: number; targetConcurrency?: number }) {
  await call('POST', '/v1/services', { name, image: fixtureImage(image), port: 8080, scaling });
  const row = await db.query<{ id: string }>(`select s.id from "Service" s join "Project" p on p."id" = s."projectId" where s.name = $1 and p.slug = $2`, [
    name,
    sys.projectSlug,
  ]);
  return row.rows[0].id;
}

const replicaCount = async (serviceId: string) =>
  Number((await db.query<{ n: string }>(`select count(*) as n from "Replica" where "serviceId" = $1`, [serviceId])).rows[0].n);
const desired = async (serviceId: string) =>
  (await db.query<{ d: number }>(`select "desiredReplicas" as d from "Service" where id = $1`, [serviceId])).rows[0].d;
const routeEntry = async (name: string) => {
  const json = await redis.hget('berth:routes', `${sys.projectSlug}/${name}`);
  return json ? (JSON.parse(json) as { desiredReplicas: number; endpoints: { replicaId: string }[] }) : null;
};

/** GETs at a fixed concurrency until stopped; returns every status seen. */
function load(service: string, path: string, concurrency: number) {
  let stop = false;
  const statuses: number[] = [];
  const bodies: string[] = [];
  const done = Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (!stop) {
        const r = await get(service, path).catch((e: Error) => ({ status: -1, body: e.message, headers: {} }));
        statuses.push(r.status);
        bodies.push(r.body);
      }
    }),
  );
  return {
    statuses,
    bodies,
    /** Every answer that was not a 200, with (the start of) its body or the client's error. */
    failures: () => statuses.flatMap((st, i) => (st === 200 ? [] : [`${st} ${bodies[i]!.slice(0, 200)}`])),
    stop: async () => {
      stop = true;
      await done;
      return statuses;
    },
  };
}

beforeAll(async () => {
  sys = await startSystem({
    agents: 1,
    env: {
      BERTH_AUTOSCALER_TICK_MS: '250',
      BERTH_AUTOSCALER_STABLE_WINDOW_MS: String(STABLE_MS),
      BERTH_AUTOSCALER_PANIC_WINDOW_MS: String(PANIC_MS),
      BERTH_AUTOSCALER_SCALE_TO_ZERO_GRACE_MS: String(GRACE_MS),
      BERTH_GATEWAY_CONCURRENCY_REPORT_MS: '250',
      BERTH_GATEWAY_METRICS_FLUSH_MS: '500',
      BERTH_GATEWAY_HOLD_TIMEOUT_MS: '30000',
      // BERTH_TEST_GATEWAY_WORKERS=2 runs the same tests against a gateway in cluster mode.
      ...(process.env.BERTH_TEST_GATEWAY_WORKERS ? { BERTH_GATEWAY_WORKERS: process.env.BERTH_TEST_GATEWAY_WORKERS } : {}),
    },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
  redis = new Redis(sys.redisUrl);
  standIn = await standInAutoscalerIfMissing(sys, {
    stableWindowMs: STABLE_MS,
    panicWindowMs: PANIC_MS,
    panicThreshold: 2,
    maxScaleDownRate: 2,
    maxScaleUpRate: 1000,
    scaleToZeroGraceMs: GRACE_MS,
  });
}, 120_000);

/**
 * Deletes every service through the api and waits (bounded) until no replica is left running, so the
 * agent stops and unmounts its containers before the harness tears the system down.
 */
async function drainServices() {
  const names = ['cold', 'roll', 'kill', 'slow'];
  for (const n of names) await call('DELETE', `/v1/services/${n}`).catch(() => undefined);
  await waitFor(
    'all replicas stopped',
    async () =>
      Number(
        (await db.query<{ n: string }>(`select count(*) as n from "Replica" where state not in ('STOPPED', 'FAILED', 'LOST', 'EXITED')`)).rows[0].n,
      ) === 0,
    45_000,
    250,
  ).catch((e: Error) => console.warn(`e2e/gateway: ${e.message}`));
}

afterAll(async () => {
  if (sys && db) await drainServices();
  await standIn?.stop();
  await db?.end();
  await redis?.quit();
  await sys?.stop();
  closeClientAgent();
}, 120_000);

it('cold start: 20 concurrent first requests to a service at zero start exactly one replica and all succeed', withLogs(async () => {
  const id = await createService('cold', 'web:v1', { min: 0, max: 3, targetConcurrency: 50 });
  await waitFor('route entry at zero', async () => (await routeEntry('cold'))?.desiredReplicas === 0, 20_000, 100);
  expect(await replicaCount(id)).toBe(0);
  const t0 = Date.now();
  const replies = await Promise.all(Array.from({ length: 20 }, () => get('cold', '/version')));
  const firstMs = Date.now() - t0;
  expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
  expect(replies.every((r) => r.body.trim() === 'v1')).toBe(true);
  expect(await replicaCount(id)).toBe(1);
  expect(firstMs).toBeLessThan(30_000); // includes the first image pull on this node
}), 60_000);

it('rolling deploy under load: zero failed requests, traffic moves to the new revision', withLogs(async () => {
  await createService('roll', 'web:v1', { min: 2, max: 2 });
  await waitFor('2 ready endpoints', async () => (await routeEntry('roll'))?.endpoints.length === 2, 60_000, 200);
  const l = load('roll', '/version', 4);
  await sleep(500);
  await call('POST', '/v1/services/roll/deployments', { image: fixtureImage('web:v2') });
  await waitFor('only v2 answers', async () => {
    const recent = l.bodies.slice(-20);
    return recent.length === 20 && recent.every((b) => b.trim() === 'v2');
  }, 90_000, 250);
  await sleep(1000);
  const statuses = await l.stop();
  expect(statuses.length).toBeGreaterThan(50);
  expect(l.failures()).toEqual([]);
}), 120_000);

it('killing a replica mid-load fails no idempotent request', withLogs(async () => {
  const id = await createService('kill', 'web:v1', { min: 2, max: 2 });
  await waitFor('2 ready endpoints', async () => (await routeEntry('kill'))?.endpoints.length === 2, 60_000, 200);
  const entry = (await routeEntry('kill'))!;
  const victim = entry.endpoints[0].replicaId;
  const l = load('kill', '/', 4);
  await sleep(500);
  // The agent runs containers under runc --root /run/berth/<node name>, container id = replica id.
  await exec('runc', ['--root', `/run/berth/${sys.agents[0].name}`, 'kill', victim, 'KILL']);
  await sleep(3000);
  const statuses = await l.stop();
  expect(statuses.length).toBeGreaterThan(50);
  expect(l.failures()).toEqual([]);
  expect(await replicaCount(id)).toBeGreaterThanOrEqual(2);
}), 90_000);

it('sustained load on the slow CGI scales up within the panic window, then down to zero after the grace', withLogs(async () => {
  const id = await createService('slow', 'slow:v1', { min: 0, max: 3, targetConcurrency: 2 });
  await waitFor('route entry', async () => (await routeEntry('slow')) !== null, 20_000, 100);
  const l = load('slow', '/cgi-bin/slow?ms=300', 8); // 8 in flight, 2 per replica → wants 3 (max)
  await waitFor('first replica ready', async () => ((await routeEntry('slow'))?.endpoints.length ?? 0) >= 1, 30_000, 100);
  await waitFor('scaled to 3', async () => (await desired(id)) === 3, PANIC_MS + 5000, 100);
  await sleep(2000);
  await l.stop();
  expect(l.failures()).toEqual([]);
  const stopped = Date.now();
  await waitFor('scaled to zero', async () => (await desired(id)) === 0, STABLE_MS + GRACE_MS + 20_000, 250);
  expect(Date.now() - stopped).toBeGreaterThanOrEqual(GRACE_MS);
  const events = await db.query<{ type: string; data: { mode: string; to: number } }>(
    `select type, data from "Event" where "serviceId" = $1 and type in ('service.autoscaled', 'service.woken') order by id`,
    [id],
  );
  expect(events.rows[0]).toMatchObject({ type: 'service.woken' });
  expect(events.rows.some((e) => e.type === 'service.autoscaled' && e.data.to === 3)).toBe(true);
  expect(events.rows[events.rows.length - 1].data.to).toBe(0);
}), 120_000);

it('traffic history: the requests, the cold start and the ready replicas of `cold` come back per minute from the api', withLogs(async () => {
  // `cold` got exactly 20 requests (one cold start) in the first test; later tests do not touch it.
  type Point = { t: string; requests: number; errors5xx: number; latencyP50Ms: number | null; replicasReady: number | null; coldStarts: number; coldStartP50Ms: number | null };
  let points: Point[] = [];
  const sum = (f: (p: Point) => number) => points.reduce((a, p) => a + f(p), 0);
  await waitFor(
    'history flushed',
    async () => {
      points = (await call('GET', '/v1/services/cold/metrics?minutes=15')).points as Point[];
      return sum((p) => p.requests) >= 20 && points.some((p) => (p.replicasReady ?? 0) >= 1);
    },
    15_000,
    250,
  );
  expect(points).toHaveLength(15);
  expect(new Date(points[14].t).getTime()).toBeGreaterThan(new Date(points[0].t).getTime());
  expect(sum((p) => p.requests)).toBe(20);
  expect(sum((p) => p.errors5xx)).toBe(0);
  expect(sum((p) => p.coldStarts)).toBe(1);
  expect(points.find((p) => p.coldStarts === 1)!.coldStartP50Ms).toBeGreaterThan(0);
  expect(points.some((p) => p.requests > 0 && p.latencyP50Ms !== null)).toBe(true);
  // Bad input is a 400 naming the parameter; an unknown service a 404.
  await expect(call('GET', '/v1/services/cold/metrics?minutes=0')).rejects.toThrow(/400.*minutes/s);
  await expect(call('GET', '/v1/services/cold/metrics?minutes=abc')).rejects.toThrow(/400.*minutes/s);
  await expect(call('GET', '/v1/services/no-such/metrics')).rejects.toThrow(/404/);
}), 60_000);
