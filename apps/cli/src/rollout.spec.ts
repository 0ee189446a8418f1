import { rolloutStatus } from './rollout';

const svc = (desired: number, active = 3) => ({ desiredReplicas: desired, activeRevision: { number: active, status: 'ROLLING_OUT' } });

describe('rolloutStatus', () => {
  it('is progressing while new replicas start and old ones run', () => {
    const s = rolloutStatus(3, svc(2), { number: 3, status: 'ROLLING_OUT' }, [
      { revision: 3, state: 'READY', node: 'a' },
      { revision: 3, state: 'PULLING', node: 'b' },
      { revision: 2, state: 'READY', node: 'a' },
    ]);
    expect(s.phase).toBe('progressing');
    expect(s.line).toBe('revision 3: 1/2 ready (1 PULLING) · 1 old replica still running');
  });
  it('is done when every desired replica of the revision is ready, the old ones are gone and it is ACTIVE', () => {
    const s = rolloutStatus(3, svc(2), { number: 3, status: 'ACTIVE' }, [
      { revision: 3, state: 'READY', node: 'a' },
      { revision: 3, state: 'READY', node: 'b' },
      { revision: 2, state: 'STOPPED', node: 'a' },
    ]);
    expect(s.phase).toBe('done');
  });
  it('is not done before the scheduler marks the revision ACTIVE', () => {
    const s = rolloutStatus(3, svc(1), { number: 3, status: 'ROLLING_OUT' }, [{ revision: 3, state: 'READY', node: 'a' }]);
    expect(s.phase).toBe('progressing');
  });
  it('fails with the scheduler\'s reason', () => {
    const s = rolloutStatus(3, svc(1, 2), { number: 3, status: 'FAILED', statusReason: 'crash loop: exit 1' }, [
      { revision: 3, state: 'BACKOFF', node: 'a' },
    ]);
    expect(s).toMatchObject({ phase: 'failed', reason: 'crash loop: exit 1' });
  });
  it('shows why a replica cannot be placed', () => {
    const s = rolloutStatus(1, svc(1, 1), { number: 1, status: 'ROLLING_OUT' }, [
      { revision: 1, state: 'PENDING', node: null, pendingReason: '0/1 nodes: 1 insufficient memory' },
    ]);
    expect(s.line).toContain('unschedulable: 0/1 nodes: 1 insufficient memory');
  });
  it('a service scaled to zero is done once nothing runs', () => {
    expect(rolloutStatus(1, svc(0, 1), { number: 1, status: 'ACTIVE' }, []).phase).toBe('done');
  });
});
