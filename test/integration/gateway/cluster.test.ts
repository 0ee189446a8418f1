import { ChildProcess, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { QueueName, WakeJob } from '@berth/contracts';
import { Worker } from 'bullmq';
import Redis from 'ioredis';
import { freePort } from '../../support/net';
import { Upstream, closeClientAgent, echo, publishRoute, request, routeEntry, sleep, startUpstream, waitFor } from './upstreams';

/**
 * The gateway as its real entry point with BERTH_GATEWAY_WORKERS=2 (node:cluster): a primary with the
 * ops port and two gateway workers sharing the proxy port. Round-robin scheduling makes consecutive new
 * connections alternate between the workers, so each test reaches both.
 */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REPO = path.resolve(__dirname, '../../..');
const run = crypto.randomBytes(4).toString('hex');
const prefix = `test-gwc-${run}:`;
const bullPrefix = `test-gwc-bull-${run}`;
const gatewayId = `gwc-${run}`;
const host = (service: string) => `${service}.acme.localhost`;
const close = { connection: 'close' };

let redis: Redis;
let gw: ChildProcess;
let port: number;
let opsPort: number;
let output = '';
const upstreams: Upstream[] = [];

const ops = async (p: string) => {
  const r = await fetch(`http://127.0.0.1:${opsPort}${p}`);
  return { status: r.status, text: await r.text() };
};

/** PIDs of the live children of `pid` (the cluster workers). */
function childrenOf(pid: number): number[] {
  const out: number[] = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(d));
    } catch {
      /* exited */
    }
  }
  return out;
}
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  [port, opsPort] = await Promise.all([freePort(), freePort()]);
  gw = spawn(process.execPath, ['-r', '@swc-node/register', 'apps/gateway/src/main.ts'], {
    cwd: REPO,
    env: {
      ...process.env,
      LOG_LEVEL: 'warn',
      REDIS_URL,
      BERTH_GATEWAY_PORT: String(port),
      BERTH_GATEWAY_OPS_PORT: String(opsPort),
      BERTH_GATEWAY_WORKERS: '2',
      BERTH_GATEWAY_SCHEDULING: 'rr',
      BERTH_GATEWAY_ID: gatewayId,
      BERTH_REDIS_KEY_PREFIX: prefix,
      BERTH_QUEUE_PREFIX: bullPrefix,
      BERTH_GATEWAY_HOLD_TIMEOUT_MS: '8000',
      BERTH_GATEWAY_CONCURRENCY_REPORT_MS: '200',
      BERTH_GATEWAY_DRAIN_MS: '2000',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  gw.stdout!.on('data', (c: Buffer) => (output += c.toString()));
  gw.stderr!.on('data', (c: Buffer) => (output += c.toString()));
  await waitFor(
    'gateway cluster ready',
    async () => {
      if (gw.exitCode !== null) throw new Error(`gateway exited: ${output}`);
      return (await ops('/readyz').catch(() => ({ status: 0 }))).status === 200;
    },
    30_000,
    100,
  );
});

afterAll(async () => {
  if (gw && gw.exitCode === null) {
    gw.kill('SIGKILL');
    for (const pid of childrenOf(gw.pid!)) process.kill(pid, 'SIGKILL');
  }
  await Promise.all(upstreams.map((u) => u.close()));
  const keys = [...(await redis.keys(`${prefix}*`)), ...(await redis.keys(`${bullPrefix}:*`))];
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  closeClientAgent();
});

describe('gateway with 2 cluster workers', () => {
  it('starts two workers that each report readiness and publish their own concurrency samples', async () => {
    const ready = JSON.parse((await ops('/readyz')).text);
    expect(ready.status).toBe('ok');
    expect(Object.keys(ready.checks)).toEqual(expect.arrayContaining(['workers', 'w1.redis', 'w1.routes', 'w2.redis', 'w2.routes']));
    expect(JSON.parse((await ops('/healthz')).text)).toMatchObject({ status: 'ok', workers: 2, of: 2 });
    expect(childrenOf(gw.pid!)).toHaveLength(2);
    await waitFor('both workers publish', async () => {
      const ids = await redis.zrange(`${prefix}berth:concurrency:gateways`, 0, -1);
      return ids.includes(`${gatewayId}-w1`) && ids.includes(`${gatewayId}-w2`);
    });
  });

  /** Requests answered 200 for acme/web so far (the /metrics sum must match it). */
  let webOk = 0;
  const web = async (path = '/') => {
    const r = await request(port, host('web'), { path, headers: close });
    if (r.status === 200) webOk++;
    return r;
  };

  it('routes requests through both workers, and each worker counts its own in-flight requests', async () => {
    const a = await startUpstream('r-cl-a');
    upstreams.push(a);
    const entry = routeEntry('acme', 'web', [a.endpoint]);
    await publishRoute(redis, prefix, entry);
    // New connections are dealt to the workers in turn: both have the route once a few in a row succeed.
    await waitFor('route in both workers', async () => {
      const rs = await Promise.all([web(), web(), web(), web()]);
      return rs.every((r) => r.status === 200 && JSON.parse(r.body).replica === 'r-cl-a');
    });
    // Switch to a replica that holds its answers, then park 8 requests on new connections.
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = await startUpstream('r-cl-slow', (req, res, u) => void gate.then(() => echo(req, res, u)));
    upstreams.push(slow);
    await publishRoute(redis, prefix, { ...entry, endpoints: [slow.endpoint] });
    await sleep(300); // both workers see the change notice well within this (pub/sub, a few ms)
    const inflight = Array.from({ length: 8 }, (_, i) => web(`/held/${i}`));
    try {
      await waitFor('8 requests at the replica', () => slow.hits === 8);
      // Each worker publishes its own average in flight; both carry some and together they carry all 8.
      const perWorker = await waitFor(
        'both workers report their in-flight requests',
        async () => {
          const vs = await Promise.all(['w1', 'w2'].map(async (w) => Number(await redis.hget(`${prefix}berth:concurrency:${gatewayId}-${w}`, entry.serviceId))));
          return vs.every((v) => v >= 0.9) && Math.abs(vs[0] + vs[1] - 8) < 0.5 ? vs : null;
        },
        10_000,
      );
      expect(perWorker).toHaveLength(2);
    } finally {
      release();
    }
    const replies = await Promise.all(inflight);
    expect(replies.map((r) => r.status)).toEqual(Array(8).fill(200));
    expect(replies.map((r) => JSON.parse(r.body).replica)).toEqual(Array(8).fill('r-cl-slow'));
    expect(replies.map((r) => JSON.parse(r.body).url)).toEqual(Array.from({ length: 8 }, (_, i) => `/held/${i}`));
  });

  it('serves /metrics aggregated over the workers', async () => {
    // Both workers answered acme/web requests (previous test): the exported count is their sum.
    await Promise.all(Array.from({ length: 6 }, () => web()));
    const m = await ops('/metrics');
    expect(m.status).toBe(200);
    expect(Number(/berth_gateway_requests_total\{service="acme\/web",code="200",app="gateway"\} (\d+)/.exec(m.text)?.[1])).toBe(webOk);
    expect(Number(/berth_gateway_request_duration_seconds_count\{[^}]*service="acme\/web"[^}]*\} (\d+)/.exec(m.text)?.[1])).toBe(webOk);
  });

  it('sends exactly ONE wake for a scaled-to-zero service although both workers hold requests', async () => {
    const replica = await startUpstream('r-cl-cold');
    upstreams.push(replica);
    const entry = routeEntry('acme', 'cold', [], { desiredReplicas: 0 });
    await publishRoute(redis, prefix, entry);
    await sleep(300);
    const wakes: WakeJob[] = [];
    // Stands in for the scheduler. The job completes (and BullMQ forgets its id) at once, so a second
    // worker adding the same job id later would NOT be deduplicated by BullMQ: only the gateway's own
    // cross-process lock keeps it to one wake.
    const worker = new Worker<WakeJob>(
      QueueName.Autoscale,
      async (job) => {
        wakes.push(job.data);
      },
      { connection: redis.duplicate(), prefix: bullPrefix },
    );
    try {
      const first = request(port, host('cold'), { path: '/first', headers: close });
      await waitFor('first wake processed', () => wakes.length === 1);
      await sleep(200);
      // More new connections: round robin puts them on both workers, each holds and asks for a wake.
      const more = Array.from({ length: 10 }, (_, i) => request(port, host('cold'), { path: `/more/${i}`, headers: close }));
      await sleep(500);
      await publishRoute(redis, prefix, { ...entry, desiredReplicas: 1, endpoints: [replica.endpoint] });
      const replies = await Promise.all([first, ...more]);
      expect(replies.map((r) => r.status)).toEqual(Array(11).fill(200));
      await sleep(300);
      expect(wakes).toHaveLength(1);
      expect(wakes[0]).toMatchObject({ kind: 'wake', serviceId: entry.serviceId });
      expect((await ops('/metrics')).text).toMatch(/berth_gateway_wakes_total\{service="acme\/cold",app="gateway"\} 1\b/);
    } finally {
      await worker.close();
    }
  });

  it('stops both workers on SIGTERM', async () => {
    const workers = childrenOf(gw.pid!);
    expect(workers).toHaveLength(2);
    const exited = new Promise<number | null>((r) => gw.once('exit', (code) => r(code)));
    gw.kill('SIGTERM');
    expect(await exited).toBe(0);
    await waitFor('workers gone', () => workers.every((pid) => !alive(pid)));
    await expect(request(port, host('web'), { headers: close })).rejects.toThrow(/ECONNREFUSED/);
  });
});
