/**
 * ReplicaSupervisor driving real runc containers: restart policies with (sub-second) backoff, OOM
 * kills, HTTP readiness. Real clock, real probes over the container network.
 */
import { ReplicaState } from '@berth/contracts';
import { netProbeDialer, ReplicaReportDetails, ReplicaSupervisor, RestartPolicy } from '@berth/runtime';
import { createTestEnv, eventually, httpGet, TestEnv } from './fixture';

jest.setTimeout(30_000);

let env: TestEnv;
beforeAll(() => {
  env = createTestEnv('sup', 13);
});
afterAll(async () => {
  const leaks = await env.teardown();
  expect(leaks).toEqual([]);
});

function supervise(id: string, restart: RestartPolicy, over: Parameters<TestEnv['spec']>[1] = {}, healthCheck: ConstructorParameters<typeof ReplicaSupervisor>[0]['healthCheck'] = null) {
  const reports: { state: ReplicaState; at: number; d: ReplicaReportDetails }[] = [];
  const sup = new ReplicaSupervisor({
    runtime: env.runtime,
    buildSpec: () => env.spec(id, over),
    restart,
    backoff: { initialDelayMs: 200, maxDelayMs: 2000, multiplier: 2, jitter: 0, resetAfterMs: 60_000 },
    healthCheck,
    port: 8080,
    dialer: netProbeDialer,
    report: (state, d) => reports.push({ state, at: Date.now(), d }),
  });
  return { sup, reports, states: () => reports.map((r) => r.state) };
}

it('on-failure:3 restarts a crashing container three times with growing backoff, then FAILED', async () => {
  const { sup, reports, states } = supervise('crash', { policy: 'on-failure', maxRetries: 3 }, { command: ['sh', '-c', 'echo crashing; exit 1'] });
  await sup.start();
  expect(await sup.done).toBe('FAILED');
  expect(states().filter((s) => s === 'STARTING')).toHaveLength(4);
  const backoffs = reports.filter((r) => r.state === 'BACKOFF');
  expect(backoffs.map((r) => r.d.delayMs)).toEqual([200, 400]); // growing
  // the next start really waited for the delay
  for (const b of backoffs) {
    const next = reports.find((r) => r.state === 'STARTING' && r.at >= b.at)!;
    expect(next.at - b.at).toBeGreaterThanOrEqual(b.d.delayMs! - 5);
  }
  // Compared whole so that a failure shows what each run ended with.
  expect(reports.filter((r) => r.state === 'EXITED').map((r) => [r.d.exitCode, r.d.reason])).toEqual(Array(4).fill([1, 'exited with code 1']));
  expect(reports.at(-1)!.d).toMatchObject({ restartCount: 3, reason: expect.stringMatching(/gave up after 3 restarts/) });
  // logs survive restarts (kept across runs, one line per run)
  expect(await env.runtime.logs('crash').tail(10)).toEqual(['crashing', 'crashing', 'crashing', 'crashing']);
  expect(await env.runtime.list()).toEqual([]);
});

it('always restarts a clean exit', async () => {
  const { sup, reports, states } = supervise('clean', { policy: 'always', maxRetries: 0 }, { command: ['sh', '-c', 'sleep 0.2; exit 0'] });
  await sup.start();
  await eventually(async () => states().filter((s) => s === 'RUNNING').length >= 3, 10_000);
  await sup.stop('test over', 1000);
  expect(reports.filter((r) => r.state === 'EXITED').every((r) => r.d.exitCode === 0)).toBe(true);
  expect(states().slice(-2)).toEqual(['STOPPING', 'STOPPED']);
  expect(sup.restartCount).toBeGreaterThanOrEqual(2);
});

it('an OOM kill is recorded and the policy applied (on-failure:1 → one restart, then FAILED)', async () => {
  const { sup, reports } = supervise('oomsup', { policy: 'on-failure', maxRetries: 1 }, {
    command: ['sh', '-c', 'x=aaaaaaaa; while :; do x=$x$x; done'],
    resources: { cpuMillis: 1000, memoryMiB: 16, pids: 16 },
  });
  await sup.start();
  expect(await sup.done).toBe('FAILED');
  const exits = reports.filter((r) => r.state === 'EXITED');
  expect(exits).toHaveLength(2);
  for (const e of exits) expect(e.d).toMatchObject({ exitCode: 137, oomKilled: true, reason: 'OOM killed (exit 137)' });
  expect(reports.at(-1)!.d.reason).toMatch(/^OOM killed \(exit 137\); gave up after 1 restarts/);
});

it('READY only once the HTTP health check passes; stop ends STOPPED with nothing left', async () => {
  const { sup, reports, states } = supervise(
    'ready',
    { policy: 'always', maxRetries: 0 },
    { command: ['sh', '-c', 'sleep 0.5; exec httpd -f -p 8080 -h /www'] },
    { type: 'http', path: '/index.html', intervalMs: 100, timeoutMs: 500, successThreshold: 1, failureThreshold: 3 },
  );
  await sup.start();
  expect(states()).toEqual(['STARTING', 'RUNNING']);
  await eventually(async () => states().includes('READY'), 5000);
  const running = reports.find((r) => r.state === 'RUNNING')!;
  const ready = reports.find((r) => r.state === 'READY')!;
  expect(ready.at - running.at).toBeGreaterThanOrEqual(400); // not before the app listened
  expect((await httpGet(`http://${running.d.address}:8080/`)).status).toBe(200);
  await sup.stop('done', 500);
  expect(states().slice(-2)).toEqual(['STOPPING', 'STOPPED']);
  expect(await env.runtime.list()).toEqual([]);
});
