import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Queue } from 'bullmq';
import Redis from 'ioredis';
import { Client } from 'pg';
import { nodeQueueName, parseNodeCommand, RedisKey, routeKey, type StartReplicaJob } from '@berth/contracts';
import { api, startSystem, type RunningSystem, waitForSystem } from '../../support/system';
import { fixtureImage } from '../../support/env';
import { stopRuncSystem } from './leftovers';

/**
 * The revision contract across every process a user's setting crosses: API → Postgres → scheduler
 * → the node's queue → the agent's parser → runc. Real api, scheduler, gateway and one runc agent.
 *
 * - every field of the config set through the API reaches the agent's replica spec unchanged;
 * - restart policies behave as Docker's `--restart` for a replica that exits 0 and one that exits
 *   non-zero (`no`, `on-failure:N`, `always`), and the exit code reaches `berth ps`;
 * - a worker (no port) is READY once running, ACTIVE, and has no route.
 */
jest.setTimeout(240_000);

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '../../..');
const BUILD = path.join(REPO, '.cache', `restart-e2e-${process.pid}`);
const CLI = path.join(BUILD, 'apps/cli/src/main.js');

let sys: RunningSystem;
let db: Client;
let redis: Redis;
let home: string;

const waitFor = <T>(what: string, fn: () => Promise<T | null | false | undefined>, timeoutMs = 60_000) => waitForSystem(sys, what, fn, timeoutMs);

const call = (method: string, p: string, body?: unknown) => api(sys.apiUrl, method, p, body, sys.adminToken, sys.projectSlug);

async function berth(args: string[]) {
  try {
    const r = await run(process.execPath, [CLI, ...args], {
      cwd: home,
      env: { PATH: process.env.PATH, HOME: home, BERTH_API: sys.apiUrl, BERTH_TOKEN: sys.adminToken, BERTH_PROJECT: sys.projectSlug },
      timeout: 120_000,
    });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, stdout: err.stdout, stderr: err.stderr };
  }
}

const replicasOf = async (service: string) =>
  (
    await db.query<{ id: string; state: string; restartCount: number; lastExitCode: number | null; completedAt: Date | null }>(
      `select r.id, r.state, r."restartCount", r."lastExitCode", r."completedAt" from "Replica" r join "Service" s on s.id = r."serviceId"
       where s.name = $1 and s."deletedAt" is null order by r."createdAt"`,
      [service],
    )
  ).rows;

/** Every log line the agent shipped for the service's replicas. */
async function logLines(service: string): Promise<string[]> {
  const out: string[] = [];
  for (const r of await replicasOf(service)) {
    for (const [, fields] of await redis.xrange(RedisKey.logs(r.id), '-', '+')) {
      const i = fields.indexOf('line');
      if (i >= 0) out.push(fields[i + 1]!);
    }
  }
  return out;
}

const count = (lines: string[], s: string) => lines.filter((l) => l.includes(s)).length;
const sh = (script: string) => ['sh', '-c', script];

beforeAll(async () => {
  execFileSync(path.join(REPO, 'node_modules/.bin/swc'), ['apps/cli/src', 'libs/contracts/src', '-d', BUILD, '--config-file', '.swcrc', '--ignore', '**/*.spec.ts', '-q'], {
    cwd: REPO,
  });
  home = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-restart-'));
  sys = await startSystem({
    agents: 1,
    runtime: 'runc',
    appEnv: {
      scheduler: { BERTH_MIN_READY_MS: '200', BERTH_STOP_GRACE_MS: '1000', BERTH_RESYNC_INTERVAL_MS: '2000' },
      // Short restart backoff so on-failure and always show several runs within seconds.
      agent: { BERTH_RESTART_BACKOFF_MS: '300', BERTH_CNI_BRIDGE: 'auto' },
    },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
  redis = new Redis(sys.redisUrl);
});

afterAll(async () => {
  redis?.disconnect();
  await db?.end().catch(() => undefined);
  if (sys) {
    const left = await stopRuncSystem(sys);
    expect(left.filter((l) => l.startsWith('container'))).toEqual([]);
  }
  if (home) fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(BUILD, { recursive: true, force: true });
});

it('every field of the config set through the API reaches the agent’s replica spec unchanged', async () => {
  const node = (await db.query<{ id: string }>(`select id from "Node" limit 1`)).rows[0]!;
  const queue = new Queue(nodeQueueName(node.id), { connection: redis.duplicate(), prefix: 'bull' });
  await queue.pause(); // the agent takes nothing while we look at what the scheduler sent
  try {
    const input = {
      name: 'roundtrip',
      image: fixtureImage('web:v1'),
      port: 8181,
      env: { GREETING: 'hello world', EMPTY: '', QUOTES: `'"\`$x` },
      command: ['httpd', '-f', '-p', '8181', '-h', '/www'],
      resources: { cpuMillis: 150, memoryMiB: 96, pids: 64 },
      restartPolicy: { policy: 'on-failure', maxRetries: 4 },
      healthCheck: { type: 'http', path: '/index.html', port: 8181, intervalMs: 1500, timeoutMs: 700, successThreshold: 2, failureThreshold: 5 },
      scaling: { min: 1, max: 2, targetConcurrency: 7 },
      placement: 'binpack',
      constraints: {},
      rollout: { maxSurge: '1', maxUnavailable: '0' },
    };
    const created = await call('POST', '/v1/services', input);
    const start = await waitFor('a start command on the node queue', async () => {
      const jobs = await queue.getJobs(['wait', 'prioritized', 'delayed']);
      return jobs.find((j) => j.data?.kind === 'start-replica')?.data;
    });
    // What the agent does with it: parse against the contract (it throws on any field that is off).
    const cmd = parseNodeCommand(start) as StartReplicaJob;
    expect(cmd.spec).toMatchObject({
      serviceName: 'roundtrip',
      projectSlug: sys.projectSlug,
      revisionNumber: 1,
      image: { reference: input.image, digest: created.activeRevision.digest },
      port: input.port,
      env: input.env,
      command: input.command,
      resources: input.resources,
      restart: input.restartPolicy,
      healthCheck: input.healthCheck,
    });
    // And the API shows the same spec back.
    const detail = await call('GET', '/v1/services/roundtrip');
    expect(detail.spec).toEqual({ ...input, name: undefined, image: undefined, healthCheck: input.healthCheck, restartPolicy: input.restartPolicy });
    await call('DELETE', '/v1/services/roundtrip');
  } finally {
    await queue.resume();
    await queue.close();
  }
  await waitFor('the deleted service’s replica gone', async () => (await replicasOf('roundtrip')).length === 0 || true);
});

it('restart "no" (CLI --restart no): a replica that exits 0 runs once, stays STOPPED with exit 0, is not replaced; ps shows it', async () => {
  // Followed (no --detach): the rollout of a run-once revision ends once its replica ran and exited 0.
  const r = await berth(['deploy', 'once', '--image', fixtureImage('web:v1'), '--restart', 'no', '--command', 'sh', '--command', '-c', '--command', 'echo ran-once; exit 0', '--timeout', '90']);
  if (r.code !== 0) throw new Error(`deploy exited ${r.code}\n${r.stderr}\n${r.stdout}`);
  expect(r.stdout).toContain('1 ran and exited 0 (restart no)');
  const done = await waitFor('the replica STOPPED by its own exit', async () => {
    const rs = await replicasOf('once');
    return rs.length === 1 && rs[0]!.state === 'STOPPED' && rs[0]!.completedAt ? rs[0] : null;
  });
  expect(done.lastExitCode).toBe(0);
  // Let several reconciles and restart backoffs pass: nothing runs it again.
  await new Promise((res) => setTimeout(res, 3000));
  expect(await replicasOf('once')).toHaveLength(1);
  expect(count(await logLines('once'), 'ran-once')).toBe(1);
  const svc = await call('GET', '/v1/services/once');
  expect(svc.activeRevision.status).toBe('ACTIVE');
  expect(svc.spec.restartPolicy).toEqual({ policy: 'no', maxRetries: 0 });
  const ps = await berth(['ps', 'once']);
  expect(ps.code).toBe(0);
  // STATE, RESTARTS, LAST EXIT: stopped, never restarted, exit code 0.
  expect(ps.stdout).toMatch(/\bSTOPPED\s+0\s+0\s/);
});

it('restart "no": a replica that exits non-zero is FAILED with its exit code and never restarted', async () => {
  await call('POST', '/v1/services', { name: 'once-bad', image: fixtureImage('web:v1'), restartPolicy: 'no', command: sh('echo ran-bad; exit 3'), healthCheck: null });
  const failed = await waitFor('FAILED', async () => (await replicasOf('once-bad')).find((x) => x.state === 'FAILED'));
  expect(failed).toMatchObject({ lastExitCode: 3, restartCount: 0 });
  await new Promise((res) => setTimeout(res, 2000));
  expect(count(await logLines('once-bad'), 'ran-bad')).toBe(1);
});

it('on-failure:2 restarts a failing replica twice (three runs), then FAILED with exit 3, not replaced; a clean exit is not restarted', async () => {
  await call('POST', '/v1/services', { name: 'retry', image: fixtureImage('web:v1'), restartPolicy: 'on-failure:2', command: sh('echo try; exit 3'), healthCheck: null });
  // The policy gives up after the third run (FAILED); the rollout's fail-fast may stop it at the same
  // moment (3 exits), so the end state is FAILED or STOPPED — either way three runs and exit 3.
  const failed = await waitFor('ended after the retries', async () => (await replicasOf('retry')).find((x) => x.state === 'FAILED' || x.state === 'STOPPED'));
  expect(failed).toMatchObject({ lastExitCode: 3, restartCount: 2 });
  await new Promise((res) => setTimeout(res, 2000));
  expect(await replicasOf('retry')).toHaveLength(1);
  expect(count(await logLines('retry'), 'try')).toBe(3);
  const ps = JSON.parse((await berth(['ps', 'retry', '-a', '--json'])).stdout);
  expect(ps[0]).toMatchObject({ restarts: 2, lastExit: { code: 3 } });

  await call('POST', '/v1/services', { name: 'retry-ok', image: fixtureImage('web:v1'), restartPolicy: { policy: 'on-failure', maxRetries: 5 }, command: sh('echo fine; exit 0'), healthCheck: null });
  await waitFor('STOPPED by its clean exit', async () => (await replicasOf('retry-ok')).find((x) => x.state === 'STOPPED' && x.completedAt));
  await new Promise((res) => setTimeout(res, 2000));
  expect(count(await logLines('retry-ok'), 'fine')).toBe(1);
  expect((await replicasOf('retry-ok'))[0]).toMatchObject({ restartCount: 0, lastExitCode: 0 });
});

it('always restarts a replica that exits 0 as well as one that fails', async () => {
  await call('POST', '/v1/services', { name: 'again', image: fixtureImage('web:v1'), restartPolicy: 'always', command: sh('echo again; exit 0'), healthCheck: null });
  await waitFor('two restarts', async () => ((await replicasOf('again'))[0]?.restartCount ?? 0) >= 2);
  // Every run's output reaches the logs (the agent follows the same file across restarts).
  await waitFor('the output of several runs', async () => count(await logLines('again'), 'again') >= 2);
  expect((await replicasOf('again')).length).toBe(1); // the agent restarts it in place; no replacement
  await call('DELETE', '/v1/services/again');
});

it('a worker (CLI --no-port) is READY once running, its rollout ends ACTIVE, and it has no URL and no route', async () => {
  const r = await berth(['deploy', 'reporter', '--image', fixtureImage('web:v1'), '--no-port', '--command', 'sh', '--command', '-c', '--command', 'echo report-ready; sleep 300', '--timeout', '90']);
  if (r.code !== 0) throw new Error(`deploy exited ${r.code}\n${r.stderr}\n${r.stdout}`);
  const svc = await call('GET', '/v1/services/reporter');
  expect(svc).toMatchObject({ kind: 'worker', url: null, activeRevision: { status: 'ACTIVE' }, spec: { port: null, healthCheck: null } });
  expect((await replicasOf('reporter'))[0]!.state).toBe('READY');
  await waitFor('its log line', async () => count(await logLines('reporter'), 'report-ready') === 1);
  expect(await redis.hget(RedisKey.routes, routeKey(sys.projectSlug, 'reporter'))).toBeNull();
  const status = await berth(['status', 'reporter']);
  expect(status.stdout).toContain('worker: no port, no URL');
  await call('DELETE', '/v1/services/reporter');
});
