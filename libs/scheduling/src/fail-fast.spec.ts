import { exitsOf, failFastVerdict, type FailFastReplica } from './fail-fast';

let n = 0;
const r = (state: FailFastReplica['state'], restartCount = 0, lastExitReason: string | null = null): FailFastReplica => ({
  id: `r${++n}`,
  state,
  restartCount,
  lastExitReason,
});

describe('failFastVerdict', () => {
  it('counts exits: restarts decided, plus one for a replica reported EXITED whose restart is pending', () => {
    expect(exitsOf({ state: 'BACKOFF', restartCount: 3 })).toBe(3);
    expect(exitsOf({ state: 'EXITED', restartCount: 2 })).toBe(3);
    expect(exitsOf({ state: 'STARTING', restartCount: 0 })).toBe(0);
    expect(exitsOf({ state: 'RUNNING', restartCount: null })).toBe(0);
  });

  it('fails when every started replica has exited 3 times, naming the exit and the restarts', () => {
    const v = failFastVerdict([r('BACKOFF', 3, 'exited with code 3'), r('EXITED', 2, 'exited with code 3')]);
    expect(v).toEqual({ reason: '2/2 started replica(s) crash-looping: exited with code 3 after 3 restart(s) (3 exits)', crashLooping: 2, failed: 0 });
  });

  it('does not fail before the third exit', () => {
    expect(failFastVerdict([r('BACKOFF', 2, 'exited with code 3')])).toBeNull();
    expect(failFastVerdict([r('EXITED', 1, 'exited with code 3')])).toBeNull();
    expect(failFastVerdict([r('STARTING', 2)])).toBeNull();
  });

  it('fails at once on a permanent failure (FAILED), and on a mix of failed and crash-looping replicas', () => {
    const missing = 'start failed permanently: executable "/nonexistent" not found';
    expect(failFastVerdict([r('FAILED', 0, missing)])?.reason).toBe(`1/1 started replica(s) failed: ${missing}`);
    const mix = failFastVerdict([r('BACKOFF', 4, 'exited with code 1'), r('FAILED', 0, missing)]);
    expect(mix).toMatchObject({ crashLooping: 1, failed: 1 });
    expect(mix!.reason).toMatch(/^2\/2 started replica\(s\) failed or crash-looping: start failed permanently/);
  });

  it('any READY replica, or one started replica that has not crashed that often, keeps the rollout (slow starters get the deadline)', () => {
    expect(failFastVerdict([r('BACKOFF', 5, 'exited with code 3'), r('READY', 0)])).toBeNull();
    expect(failFastVerdict([r('READY', 3)])).toBeNull(); // came up after its crashes
    expect(failFastVerdict([r('BACKOFF', 5, 'exited with code 3'), r('STARTING', 0)])).toBeNull();
    expect(failFastVerdict([r('FAILED', 0, 'x'), r('PULLING', 0)])).toBeNull();
    expect(failFastVerdict([r('RUNNING', 1)])).toBeNull();
  });

  it('replicas not started yet or on their way out decide nothing; with nothing started there is no verdict', () => {
    expect(failFastVerdict([])).toBeNull();
    expect(failFastVerdict([r('PENDING'), r('SCHEDULED')])).toBeNull();
    expect(failFastVerdict([r('BACKOFF', 3, 'exited with code 2'), r('PENDING'), r('STOPPING', 0), r('LOST', 0)])?.reason).toBe(
      '1/1 started replica(s) crash-looping: exited with code 2 after 3 restart(s) (3 exits)',
    );
  });

  it('the threshold is a parameter', () => {
    expect(failFastVerdict([r('BACKOFF', 1, 'exited with code 1')], 1)).not.toBeNull();
    expect(failFastVerdict([r('BACKOFF', 4, 'exited with code 1')], 5)).toBeNull();
  });
});
