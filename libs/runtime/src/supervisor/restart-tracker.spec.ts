import { ExitResult } from '../container-runtime';
import { RestartTracker } from './restart-tracker';

const exit = (code: number, extra: Partial<ExitResult> = {}): ExitResult => ({
  code,
  signal: code === 137 ? 'SIGKILL' : null,
  oomKilled: false,
  exitedAt: new Date(0),
  ...extra,
});

function tracker(policy: 'no' | 'always' | 'on-failure', maxRetries = 3, opts: { random?: number; jitter?: number } = {}) {
  let now = 0;
  const t = new RestartTracker(
    { policy, maxRetries },
    { initialDelayMs: 100, maxDelayMs: 1000, multiplier: 2, jitter: opts.jitter ?? 0, resetAfterMs: 5000 },
    () => now,
    () => opts.random ?? 0.5,
  );
  return {
    t,
    advance: (ms: number) => (now += ms),
    /** One run that lasts `ms` then exits with `result`. */
    run(ms: number, result: ExitResult) {
      t.setStarted();
      now += ms;
      t.setExitResult(result);
      return t.decide();
    },
  };
}

describe('RestartTracker', () => {
  it('policy no: clean exit → none, failure → fail', () => {
    expect(tracker('no').run(10, exit(0))).toEqual({ action: 'none', delayMs: 0, reason: 'exited with code 0' });
    const d = tracker('no').run(10, exit(2));
    expect(d.action).toBe('fail');
    expect(d.reason).toMatch(/exited with code 2/);
  });

  it('on-failure:3 restarts three times with growing delays, then fails', () => {
    const { run, t } = tracker('on-failure', 3);
    const decisions = [1, 2, 3, 4].map(() => run(10, exit(1)));
    expect(decisions.map((d) => [d.action, d.delayMs])).toEqual([
      ['restart', 0],
      ['backoff', 100],
      ['backoff', 200],
      ['fail', 0],
    ]);
    expect(decisions[3].reason).toMatch(/gave up after 3 restarts \(on-failure:3\)/);
    expect(t.restartCount).toBe(3);
  });

  it('on-failure: a clean exit is not restarted', () => {
    expect(tracker('on-failure').run(10, exit(0)).action).toBe('none');
  });

  it('on-failure with maxRetries 0 restarts failures without limit (Docker: plain on-failure), and stops on a clean exit', () => {
    const { run } = tracker('on-failure', 0);
    const actions = Array.from({ length: 20 }, () => run(10, exit(1)).action);
    expect(actions.every((a) => a === 'restart' || a === 'backoff')).toBe(true);
    expect(run(10, exit(0)).action).toBe('none');
  });

  it('always: restarts clean exits too, without limit, delay capped at maxDelayMs', () => {
    const { run } = tracker('always', 0);
    const delays = Array.from({ length: 8 }, () => run(10, exit(0))).map((d) => d.delayMs);
    expect(delays).toEqual([0, 100, 200, 400, 800, 1000, 1000, 1000]);
  });

  it('records the reason: OOM kill, signal, exit code, health check', () => {
    const { run, t } = tracker('always');
    expect(run(10, exit(137, { oomKilled: true })).reason).toBe('OOM killed (exit 137)');
    expect(run(10, exit(137)).reason).toBe('killed by SIGKILL (exit 137)');
    t.setStarted();
    t.setHealthFailure('3 consecutive failed probes');
    t.setExitResult(exit(143));
    expect(t.decide().reason).toBe('health check failed: 3 consecutive failed probes');
    expect(t.history.map((h) => h.reason)).toHaveLength(3);
  });

  it('an OOM kill is a failure even with exit code 0 reported', () => {
    expect(tracker('on-failure').run(10, exit(0, { oomKilled: true })).action).toBe('restart');
  });

  it('a killed (stopped) run is never restarted', () => {
    const { t } = tracker('always');
    t.setStarted();
    t.setKilled();
    t.setExitResult(exit(143));
    expect(t.decide()).toMatchObject({ action: 'none', reason: 'stopped on request' });
  });

  it('start errors: recoverable ones count as failures, permanent ones fail at once', () => {
    const a = tracker('always');
    a.t.setStartError({ message: 'netns busy', recoverable: true });
    expect(a.t.decide()).toMatchObject({ action: 'restart', reason: 'start failed: netns busy' });
    const b = tracker('always');
    b.t.setStartError({ message: 'exec: "nope": executable file not found', recoverable: false });
    expect(b.t.decide()).toMatchObject({ action: 'fail' });
    expect(b.t.restartCount).toBe(0);
  });

  it('a run that lasted resetAfterMs resets the delay and the retry budget', () => {
    const { run } = tracker('on-failure', 2);
    expect(run(10, exit(1)).action).toBe('restart');
    expect(run(10, exit(1)).delayMs).toBe(100);
    expect(run(6000, exit(1))).toMatchObject({ action: 'restart', delayMs: 0 });
    expect(run(10, exit(1)).delayMs).toBe(100);
    expect(run(10, exit(1)).action).toBe('fail');
  });

  it('jitter comes from the injected random and stays within ±jitter', () => {
    const low = tracker('always', 0, { jitter: 0.2, random: 0 });
    const high = tracker('always', 0, { jitter: 0.2, random: 0.999999 });
    for (const x of [low, high]) x.run(10, exit(1));
    expect(low.run(10, exit(1)).delayMs).toBe(80);
    expect(high.run(10, exit(1)).delayMs).toBe(120);
  });

  it('rejects nonsense configuration and decide() without facts', () => {
    expect(() => new RestartTracker({ policy: 'sometimes' as never, maxRetries: 1 })).toThrow(/unknown restart policy/);
    expect(() => new RestartTracker({ policy: 'always', maxRetries: -1 })).toThrow(/maxRetries/);
    expect(() => new RestartTracker({ policy: 'always', maxRetries: 0 }, { initialDelayMs: 10, maxDelayMs: 5 })).toThrow(/backoff/);
    expect(() => new RestartTracker({ policy: 'always', maxRetries: 0 }).decide()).toThrow(/nothing recorded/);
  });
});
