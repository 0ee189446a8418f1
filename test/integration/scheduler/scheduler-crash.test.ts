import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { freePort } from '../../support/system';
import { Harness, waitFor } from './helpers/harness';

jest.setTimeout(120_000);

const REPO = path.resolve(__dirname, '../../..');

/** The real scheduler process (apps/scheduler/src/main.ts) against the harness's database and Redis. */
async function startSchedulerProcess(h: Harness, logFile: string): Promise<ChildProcess> {
  const ops = await freePort();
  const s = h.settings;
  const out = fs.openSync(logFile, 'a');
  const proc = spawn(process.execPath, ['-r', '@swc-node/register', 'apps/scheduler/src/main.ts'], {
    cwd: REPO,
    stdio: ['ignore', out, out],
    env: {
      PATH: process.env.PATH,
      NODE_ENV: 'test',
      LOG_LEVEL: 'warn',
      DATABASE_URL: h.databaseUrl,
      REDIS_URL: h.redisUrl,
      BERTH_SCHEDULER_OPS_PORT: String(ops),
      ...Object.fromEntries(Object.entries(s).map(([k, v]) => [k, String(v)])),
    },
  });
  await waitFor(
    'scheduler process healthy',
    async () => {
      if (proc.exitCode !== null) throw new Error(`scheduler exited ${proc.exitCode}: ${fs.readFileSync(logFile, 'utf8').slice(-2000)}`);
      return (await fetch(`http://127.0.0.1:${ops}/healthz`).catch(() => null))?.ok;
    },
    60_000,
    100,
  );
  return proc;
}

function kill(p: ChildProcess | null, signal: NodeJS.Signals): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((r) => {
    p.once('exit', () => r());
    p.kill(signal);
  });
}

describe('scheduler process killed during a burst of 200 deploys', () => {
  // Liveness is not under test here: its 1 s default grace in the harness (4 × 250 ms heartbeats from
  // agents running inside this jest worker) let a loaded machine stall the worker long enough to mark a
  // node DOWN and re-place its replicas, which the exact replica-row count below then reported as a
  // double start. A 10 s grace keeps this test about the scheduler crash.
  const h = new Harness({ BERTH_RESYNC_INTERVAL_MS: 2000, BERTH_RECONCILE_CONCURRENCY: 8, BERTH_NODE_DOWN_AFTER_MISSED: 40 });
  const logFile = path.join(os.tmpdir(), `berth-sched-crash-${h.id}.log`);
  let proc: ChildProcess | null = null;
  beforeAll(async () => {
    await h.setup();
    for (const n of ['w1', 'w2', 'w3', 'w4']) await h.addNode(n, { cpuMillis: 64_000, memoryMiB: 65_536 });
  });
  afterAll(async () => {
    await kill(proc, 'SIGTERM');
    await h.teardown();
    if (!process.env.BERTH_TEST_KEEP) fs.rmSync(logFile, { force: true });
  });

  it('converges every service to exactly its desired READY count after SIGKILL and restart', async () => {
    proc = await startSchedulerProcess(h, logFile);
    const wanted = new Map<string, number>();
    for (let i = 0; i < 200; i++) {
      const replicas = (i % 3) + 1;
      const svc = await h.createService(`burst-${i}`, replicas);
      wanted.set(svc.id, replicas);
      if (i === 70) {
        // Mid-burst, once the scheduler is visibly working: reconciles are in flight when it dies.
        await waitFor('first placements', async () => (await h.prisma.client.replica.count()) > 10, 30_000, 20);
        await kill(proc, 'SIGKILL');
      }
    }
    // Some work was done before the kill, and it is not all done yet.
    const before = await h.prisma.client.replica.count();
    expect(before).toBeGreaterThan(0);
    proc = await startSchedulerProcess(h, logFile);

    const total = [...wanted.values()].reduce((a, b) => a + b, 0);
    await waitFor(
      `${total} replicas READY`,
      async () => (await h.prisma.client.replica.count({ where: { state: 'READY' } })) === total,
      60_000,
      250,
    ).catch(async (e) => {
      const states = await h.prisma.client.replica.groupBy({ by: ['state'], _count: { _all: true } });
      const nodes = await h.prisma.client.node.findMany({ select: { name: true, status: true } });
      const svcs = await h.prisma.client.service.count({ where: { replicas: { none: {} } } });
      throw new Error(`${(e as Error).message}; states ${JSON.stringify(states.map((x) => [x.state, x._count._all]))} nodes ${JSON.stringify(nodes)} services without replicas ${svcs}`);
    });
    const live = await h.prisma.client.replica.groupBy({
      by: ['serviceId'],
      where: { state: { notIn: ['STOPPED', 'FAILED', 'LOST'] } },
      _count: { _all: true },
    });
    const got = new Map(live.map((g) => [g.serviceId, g._count._all]));
    for (const [id, n] of wanted) expect([id, got.get(id) ?? 0]).toEqual([id, n]);
    // Nothing was double-started: every replica ever created for these services is one of the live ones.
    const created = await h.prisma.client.replica.count();
    if (created !== total) {
      // Say which replicas are extra and why they ended, so a failure can be diagnosed from CI output.
      const extra = await h.prisma.client.replica.findMany({
        where: { state: { in: ['STOPPED', 'FAILED', 'LOST'] } },
        select: { serviceId: true, state: true, lastExitReason: true, createdAt: true, stoppedAt: true },
      });
      const ids = [...new Set(extra.map((r) => r.serviceId))];
      const events = await h.prisma.client.event.findMany({ where: { serviceId: { in: ids } }, orderBy: { id: 'asc' }, select: { serviceId: true, type: true, message: true, createdAt: true } });
      console.error(`extra replicas: ${JSON.stringify(extra)}\nevents: ${JSON.stringify(events)}\nscheduler log tail:\n${fs.existsSync(logFile) ? fs.readFileSync(logFile, 'utf8').slice(-3000) : ''}`);
    }
    expect(created).toBe(total);
    // Each hollow node runs exactly what the database places on it.
    for (const n of h.nodes) {
      const running = (await n.runtime.list()).filter((c) => c.status === 'running').length;
      expect([n.name, running]).toEqual([n.name, await h.prisma.client.replica.count({ where: { nodeId: n.id, state: 'READY' } })]);
    }
  });
});
