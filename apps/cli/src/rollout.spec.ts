import { colors } from './format';
import { nodeRows, renderNodeRow, RolloutFollower, rolloutStatus } from './rollout';

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
  it('a run-once revision (restart no) is done when its replicas ran and exited 0', () => {
    const done = { revision: 3, state: 'STOPPED', node: 'a', completedAt: '2026-01-01T00:00:00Z', lastExit: { code: 0, reason: 'exited with code 0' } };
    const s = rolloutStatus(3, svc(2), { number: 3, status: 'ACTIVE' }, [done, { ...done, node: 'b' }]);
    expect(s.phase).toBe('done');
    expect(s.line).toBe('revision 3: 0/2 ready (2 exited 0)');
    // Stopped by Berth (no completedAt) is not "done".
    expect(rolloutStatus(3, svc(1), { number: 3, status: 'ACTIVE' }, [{ ...done, completedAt: null }]).phase).toBe('progressing');
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
    expect(s.line).toContain('lower --cpu/--memory, add a node, or scale down another service');
  });
  it('a service scaled to zero is done once nothing runs', () => {
    expect(rolloutStatus(1, svc(0, 1), { number: 1, status: 'ACTIVE' }, []).phase).toBe('done');
  });
});

describe('per-node pull progress', () => {
  const r = (id: string, node: string | null, state: string, pull?: { done: number; total: number } | null, revision = 3) => ({ id, node, state, revision, pull });
  it('groups the target revision by node, taking the most advanced pull record of a node', () => {
    const rows = nodeRows(3, [
      r('a1', 'b-node', 'PULLING', { done: 100, total: 1000 }),
      r('a2', 'b-node', 'PULLING', { done: 600, total: 1000 }),
      r('b1', 'a-node', 'READY', { done: 1000, total: 1000 }),
      r('c1', null, 'PENDING'),
      r('old', 'a-node', 'READY', null, 2),
      r('gone', 'a-node', 'STOPPED', null, 3),
    ]);
    expect(rows.map((x) => [x.node, x.pull, x.done, x.total, x.ready, x.replicas])).toEqual([
      ['a-node', 'pulled', 1000, 1000, 1, 1],
      ['b-node', 'pulling', 600, 1000, 0, 2],
      ['(unplaced)', 'waiting', 0, 0, 0, 1],
    ]);
  });
  it('calls an image with no recorded bytes cached once a replica is past pulling', () => {
    expect(nodeRows(3, [r('a', 'n', 'STARTING')])[0]!.pull).toBe('cached');
    expect(nodeRows(3, [r('a', 'n', 'FAILED')])[0]!.pull).toBe('failed');
  });
  it('renders a plain line without colour', () => {
    const [row] = nodeRows(3, [r('a', 'node-1', 'PULLING', { done: 500_000, total: 1_000_000 })]);
    expect(renderNodeRow(row!, 6, colors(false))).toBe('node-1  [##########----------]  50%  500 KB/1.0 MB  0/1 ready (1 PULLING)');
  });
});

describe('RolloutFollower', () => {
  const service = { desiredReplicas: 1, activeRevision: { number: 3, status: 'ROLLING_OUT' } };
  const snap = (status: string, replicas: any[]) => ({ service, revision: { number: 3, status }, replicas });
  const pulling = (done: number) => ({ id: 'r1aaaaaaaa', node: 'nd-1', revision: 3, state: 'PULLING', pull: { done, total: 100 } });

  it('off a TTY prints lines only when something changed, pull progress in quarter steps', () => {
    const f = new RolloutFollower(3, { tty: false });
    const a = f.update(snap('ROLLING_OUT', [pulling(10)]));
    expect(a.area).toEqual([]);
    expect(a.lines).toEqual(['revision 3 → ROLLING_OUT', 'nd-1  [##------------------]  10%  10 B/100 B  0/1 ready (1 PULLING)', 'revision 3: 0/1 ready (1 PULLING)']);
    expect(f.update(snap('ROLLING_OUT', [pulling(20)])).lines).toEqual([]);
    expect(f.update(snap('ROLLING_OUT', [pulling(60)])).lines).toEqual(['nd-1  [############--------]  60%  60 B/100 B  0/1 ready (1 PULLING)']);
    const done = f.update(snap('ACTIVE', [{ ...pulling(100), state: 'READY' }]));
    expect(done.lines).toEqual(['revision 3 → ACTIVE', 'nd-1  [####################] 100%  100 B/100 B  1/1 ready', 'revision 3: 1/1 ready']);
    expect(done.status.phase).toBe('done');
    expect(done.lines.join('')).not.toContain('\r');
    expect(done.lines.join('')).not.toContain('\x1b');
  });

  it('on a TTY keeps a live block of node bars and the ready count', () => {
    const f = new RolloutFollower(3, { tty: true });
    const a = f.update(snap('ROLLING_OUT', [pulling(50)]));
    expect(a.lines).toEqual(['revision 3 → ROLLING_OUT']);
    expect(a.area).toEqual(['nd-1  ██████████░░░░░░░░░░  50%  50 B/100 B  0/1 ready (1 PULLING)', 'revision 3: 0/1 ready (1 PULLING)']);
    expect(f.update(snap('ROLLING_OUT', [pulling(75)])).lines).toEqual([]);
  });

  it('reports each crash of a new replica once, with its exit', () => {
    const f = new RolloutFollower(3, { tty: false });
    const crash = (restarts: number) => ({ id: 'r1aaaaaaaa', node: 'nd-1', revision: 3, state: 'BACKOFF', restarts, lastExit: { code: 1, reason: 'exited with code 1' } });
    expect(f.update(snap('ROLLING_OUT', [crash(1)])).lines).toContain('nd-1: replica r1aaaaaa BACKOFF exit 1: exited with code 1 (restarts: 1)');
    expect(f.update(snap('ROLLING_OUT', [crash(1)])).lines).toEqual([]);
    const failed = f.update(snap('FAILED', [crash(2)]));
    expect(failed.lines).toContain('nd-1: replica r1aaaaaa BACKOFF exit 1: exited with code 1 (restarts: 2)');
    expect(failed.status.phase).toBe('failed');
  });
});

describe('pull totals', () => {
  it('uses the image size as the total while only some layers have been recorded', () => {
    const [row] = nodeRows(3, [{ id: 'a', node: 'n', state: 'PULLING', revision: 3, pull: { done: 336, total: 336 } }], 1_088_466);
    expect(row).toMatchObject({ pull: 'pulling', done: 336, total: 1_088_466 });
    const [cached] = nodeRows(3, [{ id: 'a', node: 'n', state: 'READY', revision: 3, pull: null }], 1_088_466);
    expect(cached).toMatchObject({ pull: 'cached', total: 0 });
  });
  it('says cached when every recorded layer was on the node already (nothing downloaded), pulled when any was fetched', () => {
    const row = (pull: { done: number; total: number; cached?: number }) => nodeRows(3, [{ id: 'a', node: 'n', state: 'READY', revision: 3, pull }], 1000)[0]!;
    expect(row({ done: 1000, total: 1000, cached: 1000 }).pull).toBe('cached');
    expect(renderNodeRow(row({ done: 1000, total: 1000, cached: 1000 }), 1, colors(false))).toBe('n  [####################] cached  1/1 ready');
    expect(row({ done: 1000, total: 1000, cached: 400 }).pull).toBe('pulled');
    // An agent that does not say (older versions): pulled, as before.
    expect(row({ done: 1000, total: 1000 }).pull).toBe('pulled');
    // Still PULLING: cached once the cached layers cover the whole image, pulling while some may be missing.
    const pulling = (pull: { done: number; total: number; cached?: number }) => nodeRows(3, [{ id: 'a', node: 'n', state: 'PULLING', revision: 3, pull }], 1000)[0]!.pull;
    expect(pulling({ done: 1000, total: 1000, cached: 1000 })).toBe('cached');
    expect(pulling({ done: 600, total: 600, cached: 600 })).toBe('pulling');
  });
});
