import type { Replica, ReplicaState, Revision, RevisionStatus, ServiceDetail } from '../api/types';
import { operationProgress } from './progress';

let seq = 0;
const replica = (revision: number, state: ReplicaState): Replica => ({
  id: `r${++seq}`,
  revision,
  node: 'n1',
  state,
  restarts: 0,
  lastExit: null,
  pendingReason: null,
  address: null,
  port: null,
  createdAt: '2026-01-01T00:00:00Z',
  startedAt: null,
  readyAt: null,
  stoppedAt: null,
  completedAt: null,
});
const revision = (number: number, status: RevisionStatus, statusReason: string | null = null) =>
  ({ number, status, statusReason, config: {}, image: 'r/web:v1', tag: 'v1', digest: 'sha256:a', reason: 'DEPLOY', createdAt: '', id: `v${number}` }) as unknown as Revision;
const service = (desired: number) => ({ replicas: { desired, ready: 0, byState: {} } }) as unknown as ServiceDetail;

const deploy = { kind: 'deploy' as const, revision: 2, label: 'Deploy of v2' };

describe('operation progress', () => {
  it('waits for the revision to appear', () => {
    expect(operationProgress(deploy, service(1), [], [revision(1, 'ACTIVE')]).phase).toBe('running');
  });

  it('follows a rollout step by step from replica states', () => {
    const revs = [revision(2, 'ROLLING_OUT'), revision(1, 'ACTIVE')];
    const p1 = operationProgress(deploy, service(2), [replica(1, 'READY'), replica(1, 'READY'), replica(2, 'PULLING'), replica(2, 'SCHEDULED')], revs);
    expect(p1.phase).toBe('running');
    expect(p1.text).toContain('0 of 2 new replicas ready');
    expect(p1.text).toContain('1 pulling the image');
    expect(p1.text).toContain('2 old still running');
    expect(p1.steps).toEqual([
      { label: 'SCHEDULED', count: 1 },
      { label: 'PULLING', count: 1 },
    ]);

    // New replicas ready but the revision not yet ACTIVE and old ones still up: not done.
    const p2 = operationProgress(deploy, service(2), [replica(1, 'STOPPING'), replica(2, 'READY'), replica(2, 'READY')], revs);
    expect(p2.phase).toBe('running');

    const done = operationProgress(
      deploy,
      service(2),
      [replica(1, 'STOPPED'), replica(1, 'STOPPED'), replica(2, 'READY'), replica(2, 'READY')],
      [revision(2, 'ACTIVE'), revision(1, 'SUPERSEDED')],
    );
    expect(done.phase).toBe('done');
    expect(done.text).toBe('Deploy of v2: revision 2 is active with 2 of 2 replicas ready.');
  });

  it('reports a failed revision with the reason the system gave', () => {
    const p = operationProgress(deploy, service(1), [replica(2, 'BACKOFF')], [revision(2, 'FAILED', 'never became ready within 60s'), revision(1, 'ACTIVE')]);
    expect(p.phase).toBe('failed');
    expect(p.text).toContain('never became ready within 60s');
  });

  it('fails when every new replica failed, even before the revision is marked', () => {
    const p = operationProgress(deploy, service(1), [replica(2, 'FAILED')], [revision(2, 'ROLLING_OUT')]);
    expect(p.phase).toBe('failed');
  });

  it('a scale is done when exactly the desired replicas are ready and none is changing', () => {
    const op = { kind: 'scale' as const, desired: 3, label: 'Scale to 3' };
    expect(operationProgress(op, service(3), [replica(1, 'READY'), replica(1, 'STARTING')], []).text).toBe('Scale to 3: 1 of 3 replicas ready, 1 changing…');
    expect(operationProgress(op, service(3), [replica(1, 'READY'), replica(1, 'READY'), replica(1, 'READY'), replica(1, 'STOPPED')], []).phase).toBe('done');
    const down = { kind: 'scale' as const, desired: 1, label: 'Scale to 1' };
    expect(operationProgress(down, service(1), [replica(1, 'READY'), replica(1, 'STOPPING')], []).phase).toBe('running');
    expect(operationProgress(down, service(1), [replica(1, 'READY'), replica(1, 'STOPPED')], []).phase).toBe('done');
    const zero = { kind: 'scale' as const, desired: 0, label: 'Scale to 0' };
    expect(operationProgress(zero, service(0), [replica(1, 'STOPPED')], []).phase).toBe('done');
  });
});
