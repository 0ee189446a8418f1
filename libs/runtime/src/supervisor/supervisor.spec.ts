import { HealthCheckSpec, ReplicaState } from '@berth/contracts';
import { ManualClock } from '../clock';
import { ContainerSpec } from '../container-runtime';
import { HOLLOW_ANNOTATION, HollowBehavior, HollowRuntime } from '../hollow.runtime';
import { RestartPolicy } from './restart-tracker';
import { ReplicaReportDetails, ReplicaSupervisor } from './supervisor';

const spec = (behavior: HollowBehavior): ContainerSpec => ({
  id: 'replica-1',
  rootfs: { path: '/unused' },
  image: { Cmd: ['app'] },
  port: 8080,
  resources: { cpuMillis: 100, memoryMiB: 64, pids: 32 },
  annotations: { [HOLLOW_ANNOTATION]: JSON.stringify(behavior) },
});

const http: HealthCheckSpec = { type: 'http', path: '/', intervalMs: 100, timeoutMs: 50, successThreshold: 1, failureThreshold: 2 };

function setup(opts: { behavior: HollowBehavior | (() => HollowBehavior); restart: RestartPolicy; healthCheck?: HealthCheckSpec | null; runtime?: HollowRuntime; clock?: ManualClock }) {
  const clock = opts.clock ?? new ManualClock(0);
  const runtime = opts.runtime ?? new HollowRuntime({ clock, random: () => 0.5 });
  const reports: { state: ReplicaState; at: number; d: ReplicaReportDetails }[] = [];
  const behavior = typeof opts.behavior === 'function' ? opts.behavior : () => opts.behavior as HollowBehavior;
  const sup = new ReplicaSupervisor({
    runtime,
    buildSpec: () => spec(behavior()),
    restart: opts.restart,
    backoff: { initialDelayMs: 1000, maxDelayMs: 8000, multiplier: 2, jitter: 0, resetAfterMs: 60_000 },
    healthCheck: opts.healthCheck ?? null,
    port: 8080,
    dialer: runtime.probeDialer(),
    clock,
    random: () => 0.5,
    stopGraceMs: 500,
    report: (state, d) => reports.push({ state, at: clock.now(), d }),
  });
  return { clock, runtime, reports, sup, states: () => reports.map((r) => r.state) };
}

/** stop() waits on runtime timers (SIGTERM reaction, grace period): keep the manual clock moving. */
async function stopAdvancing(sup: ReplicaSupervisor, clock: ManualClock, reason?: string, graceMs = 100) {
  const p = sup.stop(reason, graceMs);
  await clock.advance(graceMs + 10);
  await p;
}

describe('ReplicaSupervisor', () => {
  it('restart "no": a clean exit ends STOPPED, marked completed with its exit code; a stop request is not "completed"', async () => {
    const { sup, clock, reports, states } = setup({ behavior: { exit: { afterMs: 100, code: 0 } }, restart: { policy: 'no', maxRetries: 0 } });
    await sup.start();
    await clock.advance(1000);
    expect(states()).toEqual(['STARTING', 'RUNNING', 'READY', 'EXITED', 'STOPPED']);
    expect(reports.at(-1)!.d).toMatchObject({ completed: true, exitCode: 0 });
    const other = setup({ behavior: {}, restart: { policy: 'no', maxRetries: 0 } });
    await other.sup.start();
    await stopAdvancing(other.sup, other.clock);
    expect(other.reports.at(-1)!.state).toBe('STOPPED');
    expect(other.reports.at(-1)!.d.completed).toBeUndefined();
  });

  it('restart "no": a failing exit ends FAILED with its exit code, never restarted', async () => {
    const { sup, clock, reports, states } = setup({ behavior: { exit: { afterMs: 100, code: 3 } }, restart: { policy: 'no', maxRetries: 0 } });
    await sup.start();
    await clock.advance(60_000);
    expect(states()).toEqual(['STARTING', 'RUNNING', 'READY', 'EXITED', 'FAILED']);
    expect(reports.at(-1)!.d).toMatchObject({ completed: true, exitCode: 3 });
  });

  it('STARTING → RUNNING → READY at once without a health check, reporting the address', async () => {
    const { sup, reports, states } = setup({ behavior: {}, restart: { policy: 'always', maxRetries: 0 } });
    await sup.start();
    expect(states()).toEqual(['STARTING', 'RUNNING', 'READY']);
    expect(reports[1].d).toMatchObject({ address: expect.stringMatching(/^10\.255\./), port: 8080, pid: expect.any(Number), restartCount: 0 });
  });

  it('READY only after the health check passes', async () => {
    const { sup, clock, reports, states } = setup({ behavior: { ready: { afterMs: 350 } }, restart: { policy: 'always', maxRetries: 0 }, healthCheck: http });
    await sup.start();
    await clock.advance(300);
    expect(states()).toEqual(['STARTING', 'RUNNING']);
    await clock.advance(100);
    expect(states()).toEqual(['STARTING', 'RUNNING', 'READY']);
    // Failed probes before the first pass back off 10, 20, 40, 80 ms then every intervalMs (100):
    // 0, 10, 30, 70, 150, 250, 350 — the probe at 350 ms finds the app ready.
    expect(reports[2].at).toBe(350);
  });

  it('on-failure:3 restarts a crashing container three times with growing backoff, then FAILED', async () => {
    const { sup, clock, reports, states } = setup({ behavior: { exit: { afterMs: 100, code: 1 } }, restart: { policy: 'on-failure', maxRetries: 3 } });
    await sup.start();
    await clock.advance(20_000);
    expect(await sup.done).toBe('FAILED');
    expect(states()).toEqual([
      ...['STARTING', 'RUNNING', 'READY', 'EXITED'], // restart 1: immediate
      ...['STARTING', 'RUNNING', 'READY', 'EXITED', 'BACKOFF'], // restart 2: 1 s
      ...['STARTING', 'RUNNING', 'READY', 'EXITED', 'BACKOFF'], // restart 3: 2 s
      ...['STARTING', 'RUNNING', 'READY', 'EXITED', 'FAILED'],
    ]);
    expect(reports.filter((r) => r.state === 'BACKOFF').map((r) => r.d.delayMs)).toEqual([1000, 2000]);
    expect(reports.find((r) => r.state === 'EXITED')!.d).toMatchObject({ exitCode: 1, reason: 'exited with code 1' });
    expect(reports.at(-1)!.d).toMatchObject({ restartCount: 3, reason: expect.stringMatching(/gave up after 3 restarts/) });
    expect(sup.restartCount).toBe(3);
  });

  it('always restarts a clean exit', async () => {
    const { sup, clock, states } = setup({ behavior: { exit: { afterMs: 100, code: 0 } }, restart: { policy: 'always', maxRetries: 0 } });
    await sup.start();
    await clock.advance(150);
    expect(states().slice(0, 7)).toEqual(['STARTING', 'RUNNING', 'READY', 'EXITED', 'STARTING', 'RUNNING', 'READY']);
    await stopAdvancing(sup, clock, 'test over');
  });

  it('policy no: a clean exit ends STOPPED, a failure FAILED', async () => {
    const ok = setup({ behavior: { exit: { afterMs: 10, code: 0 } }, restart: { policy: 'no', maxRetries: 0 } });
    await ok.sup.start();
    await ok.clock.advance(10);
    expect(await ok.sup.done).toBe('STOPPED');
    const bad = setup({ behavior: { exit: { afterMs: 10, code: 2 } }, restart: { policy: 'no', maxRetries: 0 } });
    await bad.sup.start();
    await bad.clock.advance(10);
    expect(await bad.sup.done).toBe('FAILED');
  });

  it('reports an OOM kill and applies the policy to it', async () => {
    const { sup, clock, reports } = setup({ behavior: { exit: { afterMs: 50, code: 137, oomKilled: true } }, restart: { policy: 'on-failure', maxRetries: 1 } });
    await sup.start();
    await clock.advance(5000);
    const exited = reports.filter((r) => r.state === 'EXITED');
    expect(exited[0].d).toMatchObject({ exitCode: 137, signal: 'SIGKILL', oomKilled: true, reason: 'OOM killed (exit 137)' });
    expect(reports.at(-1)).toMatchObject({ state: 'FAILED', d: { reason: expect.stringMatching(/^OOM killed/) } });
  });

  it('a failing liveness check after READY stops the container and restarts it, with the health reason', async () => {
    const { sup, clock, reports, states } = setup({
      behavior: { unhealthyAfterMs: 1000 },
      restart: { policy: 'on-failure', maxRetries: 5 },
      healthCheck: http,
    });
    await sup.start();
    await clock.advance(1250);
    expect(states().slice(0, 6)).toEqual(['STARTING', 'RUNNING', 'READY', 'RUNNING', 'EXITED', 'STARTING']);
    const exited = reports.find((r) => r.state === 'EXITED')!;
    expect(exited.d.exitCode).toBe(143); // SIGTERM'd by the supervisor
    expect(sup.restartHistory[0].reason).toMatch(/^health check failed: 2 consecutive failed probes/);
    await stopAdvancing(sup, clock);
  });

  it('stop during BACKOFF goes STOPPING → STOPPED and never starts again', async () => {
    const { sup, clock, runtime, states } = setup({ behavior: { exit: { afterMs: 10, code: 1 } }, restart: { policy: 'always', maxRetries: 0 } });
    await sup.start();
    await clock.advance(30);
    expect(states().at(-1)).toBe('BACKOFF');
    await sup.stop('scaled down');
    await clock.advance(60_000);
    expect(states().slice(-2)).toEqual(['STOPPING', 'STOPPED']);
    expect(await sup.done).toBe('STOPPED');
    expect(await runtime.list()).toEqual([]);
  });

  it('stop of a READY replica stops and destroys the container', async () => {
    const { sup, runtime, clock, states } = setup({ behavior: {}, restart: { policy: 'always', maxRetries: 0 } });
    await sup.start();
    await stopAdvancing(sup, clock, 'deploy superseded');
    expect(states()).toEqual(['STARTING', 'RUNNING', 'READY', 'STOPPING', 'STOPPED']);
    expect(await runtime.list()).toEqual([]);
  });

  it('a permanent start error fails at once', async () => {
    const { sup, states, reports } = setup({ behavior: { startError: { message: 'exec: "app": executable file not found', recoverable: false } }, restart: { policy: 'always', maxRetries: 0 } });
    await sup.start();
    expect(states()).toEqual(['STARTING', 'EXITED', 'FAILED']);
    expect(reports.at(-1)!.d.reason).toMatch(/start failed permanently/);
  });

  it('adopt resumes a live container without restarting it, and still applies the policy later', async () => {
    const clock = new ManualClock(0);
    const runtime = new HollowRuntime({ clock });
    const original = await runtime.start(spec({ exit: { afterMs: 5000, code: 3 } }));
    await clock.advance(1000);
    const { sup, states, reports } = setup({ behavior: {}, restart: { policy: 'on-failure', maxRetries: 2 }, healthCheck: http, runtime, clock });
    await sup.adopt(await runtime.recover('replica-1'));
    await clock.advance(100);
    expect(states()).toEqual(['RUNNING', 'READY']);
    expect(reports[0].d.pid).toBe(original.pid);
    expect((await runtime.inspect('replica-1')).pid).toBe(original.pid);
    await clock.advance(4000);
    expect(states().slice(2, 5)).toEqual(['EXITED', 'STARTING', 'RUNNING']);
    expect(reports[2].d.exitCode).toBe(3);
    await stopAdvancing(sup, clock);
  });

  it('adopt of a container that exited while the agent was down handles that exit', async () => {
    const clock = new ManualClock(0);
    const runtime = new HollowRuntime({ clock });
    await runtime.start(spec({ exit: { afterMs: 10, code: 0 } }));
    await clock.advance(20);
    const { sup, states } = setup({ behavior: {}, restart: { policy: 'on-failure', maxRetries: 2 }, runtime, clock });
    await sup.adopt(await runtime.recover('replica-1'));
    expect(states()).toEqual(['EXITED', 'STOPPED']);
  });
});
