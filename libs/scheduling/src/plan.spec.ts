import { isEmptyPlan, plan, type Plan, type PlanInput } from './plan';
import { ids, node, replica, revision, service } from './test-fixtures';
import type { ReplicaView, RevisionView } from './types';

const opts = (now = 1000) => ({ now, rolloutDeadlineMs: 60_000, newId: ids() });
const nodes3 = () => [node('a'), node('b'), node('c')];

/** Applies a plan the way the scheduler + agents would, with every started replica becoming `startAs`. */
function apply(input: PlanInput, p: Plan, startAs: ReplicaView['state'] = 'READY'): PlanInput {
  const stopped = new Set([...p.stop, ...p.lost].map((s) => s.replicaId));
  let replicas = input.replicas.filter((r) => !stopped.has(r.id));
  replicas = replicas.map((r) => {
    const placed = p.place.find((x) => x.replicaId === r.id);
    return placed ? { ...r, nodeId: placed.nodeId, state: startAs } : r;
  });
  for (const c of p.create) {
    replicas.push(
      replica({ id: c.replicaId, revisionId: c.revisionId, nodeId: c.nodeId, state: c.nodeId ? startAs : 'PENDING', pendingReason: c.pendingReason }),
    );
  }
  const revisions = input.revisions.map((r) => {
    const ch = p.revisions.filter((x) => x.revisionId === r.id).pop();
    return ch ? { ...r, status: ch.to, rolloutStartedAt: ch.to === 'ROLLING_OUT' ? 1000 : r.rolloutStartedAt } : r;
  });
  const service = p.activeRevisionId !== undefined ? { ...input.service, activeRevisionId: p.activeRevisionId } : input.service;
  return { ...input, service, replicas, revisions };
}

const countBy = (rs: readonly ReplicaView[], f: (r: ReplicaView) => string) =>
  rs.reduce<Record<string, number>>((m, r) => ((m[f(r)] = (m[f(r)] ?? 0) + 1), m), {});

describe('plan: steady state', () => {
  it('creates the desired replicas spread over the nodes, then converges to an empty plan', () => {
    const input: PlanInput = { service: service({ desiredReplicas: 6 }), revisions: [revision(1, { status: 'PENDING', rolloutStartedAt: null })], replicas: [], nodes: nodes3() };
    const p = plan(input, opts());
    expect(p.create).toHaveLength(6);
    expect(countBy(p.create as unknown as ReplicaView[], (c) => c.nodeId!)).toEqual({ 'id-a': 2, 'id-b': 2, 'id-c': 2 });
    expect(p.revisions).toEqual([{ revisionId: 'rev1', from: 'PENDING', to: 'ROLLING_OUT', reason: null }]);
    expect(p.events.map((e) => e.type)).toEqual(['revision.rollout_started', 'replicas.placed']);
    const after = apply(input, p);
    const p2 = plan(after, opts(2000));
    expect(p2.revisions).toEqual([{ revisionId: 'rev1', from: 'ROLLING_OUT', to: 'ACTIVE', reason: null }]);
    expect(isEmptyPlan(plan(apply(after, p2), opts(3000)))).toBe(true);
  });

  it('scales down by stopping unplaced, then not-ready, then the newest ready replicas', () => {
    const rs = [
      replica({ nodeId: 'id-a' }),
      replica({ nodeId: 'id-b', state: 'STARTING' }),
      replica({ nodeId: 'id-c' }),
      replica({ state: 'PENDING' }),
      replica({ nodeId: 'id-a' }),
    ];
    const p = plan({ service: service({ desiredReplicas: 2 }), revisions: [revision(1)], replicas: rs, nodes: nodes3() }, opts());
    expect(p.stop.map((s) => s.replicaId)).toEqual([rs[3]!.id, rs[1]!.id, rs[4]!.id]);
    expect(p.stop[0]).toMatchObject({ from: 'PENDING', nodeId: null, reason: 'scaled down to 2' });
    expect(p.create).toHaveLength(0);
  });

  it('keeps an unplaceable replica PENDING with the summarised reason and places it when capacity appears', () => {
    const tiny = { capacity: { cpuMillis: 4000, memoryMiB: 100, pids: 1000 } };
    const input: PlanInput = {
      service: service({ desiredReplicas: 1 }),
      revisions: [revision(1)],
      replicas: [],
      nodes: [node('a', tiny), node('b', tiny), node('c', { status: 'DRAINING' })],
    };
    const p = plan(input, opts());
    expect(p.create).toEqual([
      { replicaId: 'new1', revisionId: 'rev1', nodeId: null, pendingReason: '0/3 nodes available: 2 insufficient memory (need 128 MiB), 1 draining' },
    ]);
    expect(p.events.find((e) => e.type === 'replicas.unschedulable')?.message).toMatch(/insufficient memory/);
    const pending = apply(input, p);
    // Same reason again: nothing to write, no new event.
    const again = plan(pending, opts());
    expect(isEmptyPlan(again)).toBe(true);
    expect(again.events).toEqual([]);
    const grown = { ...pending, nodes: [...pending.nodes, node('d')] };
    const p3 = plan(grown, opts());
    expect(p3.place).toEqual([{ replicaId: 'new1', generation: 1, nodeId: 'id-d' }]);
    expect(p3.create).toHaveLength(0);
  });

  it('honours label constraints', () => {
    const p = plan(
      {
        service: service({ desiredReplicas: 2, constraints: { zone: 'eu' } }),
        revisions: [revision(1)],
        replicas: [],
        nodes: [node('a'), node('b', { labels: { zone: 'eu' } })],
      },
      opts(),
    );
    expect(p.create.map((c) => c.nodeId)).toEqual(['id-b', 'id-b']);
  });

  it('stops everything of a deleted service, PENDING ones included', () => {
    const rs = [replica({ nodeId: 'id-a' }), replica({ state: 'PENDING' }), replica({ nodeId: 'id-b', state: 'STOPPING' })];
    const p = plan({ service: service({ deleted: true }), revisions: [revision(1)], replicas: rs, nodes: nodes3() }, opts());
    expect(p.stop.map((s) => [s.replicaId, s.reason])).toEqual([
      [rs[0]!.id, 'service deleted'],
      [rs[1]!.id, 'service deleted'],
    ]);
  });
});

describe('plan: node loss and drain', () => {
  it('marks replicas on a DOWN node LOST and places replacements on healthy nodes', () => {
    const nodes = [node('a'), node('b'), node('c', { status: 'DOWN' })];
    const rs = ['id-a', 'id-a', 'id-b', 'id-b', 'id-c', 'id-c'].map((n) => replica({ nodeId: n }));
    const p = plan({ service: service({ desiredReplicas: 6 }), revisions: [revision(1)], replicas: rs, nodes }, opts());
    expect(p.lost.map((l) => l.replicaId)).toEqual([rs[4]!.id, rs[5]!.id]);
    expect(p.lost[0]!.reason).toBe('node c is down');
    expect(p.create.map((c) => c.nodeId)).toEqual(['id-a', 'id-b']);
    expect(p.events.filter((e) => e.type === 'replica.lost')).toHaveLength(2);
  });

  it('drains without downtime: replacements first, then the drained replicas once they are READY', () => {
    const nodes = [node('a'), node('b'), node('c', { status: 'DRAINING' })];
    const rs = ['id-a', 'id-a', 'id-b', 'id-b', 'id-c', 'id-c'].map((n) => replica({ nodeId: n }));
    let input: PlanInput = { service: service({ desiredReplicas: 6 }), revisions: [revision(1)], replicas: rs, nodes };
    const p1 = plan(input, opts());
    expect(p1.create.map((c) => c.nodeId)).toEqual(['id-a', 'id-b']);
    expect(p1.stop).toEqual([]);
    input = apply(input, p1, 'STARTING');
    expect(plan(input, opts()).stop).toEqual([]);
    input = { ...input, replicas: input.replicas.map((r) => ({ ...r, state: 'READY' as const })) };
    const p3 = plan(input, opts());
    expect(p3.stop.map((s) => s.replicaId).sort()).toEqual([rs[4]!.id, rs[5]!.id]);
    expect(p3.stop[0]!.reason).toBe('node c is draining');
    expect(p3.create).toEqual([]);
  });
});

describe('plan: rolling deploy', () => {
  const deploy = (desired: number, over: { maxSurge?: string; maxUnavailable?: string } = {}): PlanInput => ({
    service: service({ desiredReplicas: desired, activeRevisionId: 'rev2', ...over }),
    revisions: [revision(1), revision(2, { status: 'PENDING', rolloutStartedAt: null })],
    replicas: Array.from({ length: desired }, (_, i) => replica({ nodeId: ['id-a', 'id-b', 'id-c'][i % 3]! })),
    nodes: nodes3(),
  });

  it('starts at most maxSurge new replicas and stops old ones only as new ones become READY', () => {
    let input = deploy(4); // surge 1, unavailable 0
    let minReady = Infinity;
    let maxTotal = 0;
    for (let step = 0; step < 20; step++) {
      const p = plan(input, opts(1000 + step));
      if (isEmptyPlan(p)) break;
      // New replicas come up STARTING; the next step sees them READY.
      input = apply(input, p, 'STARTING');
      const live = input.replicas;
      maxTotal = Math.max(maxTotal, live.length);
      minReady = Math.min(minReady, live.filter((r) => r.state === 'READY').length);
      input = { ...input, replicas: live.map((r) => ({ ...r, state: 'READY' as const })) };
    }
    expect(maxTotal).toBeLessThanOrEqual(5);
    expect(minReady).toBeGreaterThanOrEqual(4);
    expect(input.replicas.map((r) => r.revisionId)).toEqual(['rev2', 'rev2', 'rev2', 'rev2']);
    expect(input.revisions.map((r) => [r.id, r.status])).toEqual([
      ['rev1', 'SUPERSEDED'],
      ['rev2', 'ACTIVE'],
    ]);
  });

  it('with maxUnavailable it stops old replicas before new ones are ready', () => {
    const p = plan(deploy(4, { maxSurge: '0', maxUnavailable: '50%' }), opts());
    expect(p.create).toHaveLength(0); // no surge room: 4 old + 0 surge
    expect(p.stop).toHaveLength(2);
  });

  it('does not stop old replicas while the new ones are not READY', () => {
    const input = apply(deploy(4), plan(deploy(4), opts()), 'BACKOFF');
    const p = plan(input, opts(2000));
    expect(p.stop).toEqual([]);
    expect(p.create).toEqual([]);
    expect(p.recheckAt).toBe(1000 + 60_000 + 1);
  });

  it('fails a revision that is not ready by its deadline and restores the previous one, keeping its replicas', () => {
    let input = deploy(3);
    input = apply(input, plan(input, opts(1000)), 'BACKOFF');
    input = { ...input, replicas: input.replicas.map((r) => (r.revisionId === 'rev2' ? { ...r, lastExitReason: 'exited with code 1' } : r)) };
    expect(plan(input, opts(61_000)).revisions).toEqual([]);
    const p = plan(input, opts(61_002));
    expect(p.revisions).toEqual([
      { revisionId: 'rev2', from: 'ROLLING_OUT', to: 'FAILED', reason: '0/3 replicas ready after 60s (1 BACKOFF): exited with code 1' },
    ]);
    expect(p.activeRevisionId).toBe('rev1');
    const oldIds = input.replicas.filter((r) => r.revisionId === 'rev1').map((r) => r.id);
    expect(p.stop.map((s) => s.replicaId)).not.toEqual(expect.arrayContaining([oldIds[0]]));
    expect(p.stop.map((s) => input.replicas.find((r) => r.id === s.replicaId)!.revisionId)).toEqual(['rev2']);
    expect(p.events.map((e) => e.type)).toEqual(expect.arrayContaining(['revision.failed', 'service.rolled_back']));
    const after = apply(input, p);
    expect(isEmptyPlan(plan(after, opts(62_000)))).toBe(true);
  });

  it('does not count time before the scheduler started towards the deadline', () => {
    let input = deploy(1);
    input = apply(input, plan(input, opts(1000)), 'STARTING');
    expect(plan(input, { ...opts(70_000), deadlineNotBefore: 50_000 }).activeRevisionId).toBeUndefined();
    expect(plan(input, { ...opts(70_000), deadlineNotBefore: 50_000 }).recheckAt).toBe(110_001);
    expect(plan(input, { ...opts(110_002), deadlineNotBefore: 50_000 }).activeRevisionId).toBe('rev1');
  });

  it('honours a per-revision deadline', () => {
    let input = deploy(1);
    input = { ...input, revisions: input.revisions.map((r) => (r.id === 'rev2' ? { ...r, rolloutDeadlineMs: 500 } : r)) };
    input = apply(input, plan(input, opts(1000)), 'STARTING');
    input = { ...input, revisions: input.revisions.map((r) => (r.id === 'rev2' ? { ...r, rolloutDeadlineMs: 500 } : r)) };
    expect(plan(input, opts(1400)).activeRevisionId).toBeUndefined();
    expect(plan(input, opts(1600)).activeRevisionId).toBe('rev1');
  });

  it('fails at once when as many replicas FAILED as are wanted', () => {
    const input = deploy(2);
    const revs: RevisionView[] = input.revisions.map((r) => (r.id === 'rev2' ? { ...r, status: 'ROLLING_OUT', rolloutStartedAt: 1000 } : r));
    const failed = [1, 2].map(() => replica({ revisionId: 'rev2', nodeId: 'id-c', state: 'FAILED', lastExitReason: 'pull failed: manifest unknown' }));
    const p = plan({ ...input, revisions: revs, replicas: [...input.replicas, ...failed] }, opts(1100));
    expect(p.revisions[0]).toMatchObject({ revisionId: 'rev2', to: 'FAILED', reason: '2 replica(s) failed: pull failed: manifest unknown' });
    expect(p.activeRevisionId).toBe('rev1');
  });

  it('fails fast, long before the deadline, when every new replica crash-loops; the previous revision stays', () => {
    let input = deploy(2, { maxSurge: '100%' });
    input = apply(input, plan(input, opts(1000)), 'BACKOFF');
    const crashing = (restartCount: number) => ({
      ...input,
      replicas: input.replicas.map((r) => (r.revisionId === 'rev2' ? { ...r, restartCount, lastExitReason: 'exited with code 3' } : r)),
    });
    // Two exits each: still trying (a slow starter may crash a little); the deadline is far away.
    expect(plan(crashing(2), opts(5000)).revisions).toEqual([]);
    const p = plan(crashing(3), opts(5000));
    expect(p.revisions).toEqual([
      { revisionId: 'rev2', from: 'ROLLING_OUT', to: 'FAILED', reason: '2/2 started replica(s) crash-looping: exited with code 3 after 3 restart(s) (3 exits)' },
    ]);
    expect(p.activeRevisionId).toBe('rev1');
    expect(p.events.find((e) => e.type === 'revision.failed')?.message).toMatch(/exited with code 3 after 3 restart/);
    expect(p.stop.map((s) => input.replicas.find((r) => r.id === s.replicaId)!.revisionId)).toEqual(['rev2', 'rev2']);
  });

  it('does not fail fast while one new replica is READY or still starting without crashes', () => {
    let input = deploy(2, { maxSurge: '100%' });
    input = apply(input, plan(input, opts(1000)), 'BACKOFF');
    const news = input.replicas.filter((r) => r.revisionId === 'rev2');
    const withStates = (second: ReplicaView['state']) => ({
      ...input,
      replicas: input.replicas.map((r) =>
        r.id === news[0]!.id ? { ...r, restartCount: 5, lastExitReason: 'exited with code 3' } : r.id === news[1]?.id ? { ...r, state: second, restartCount: 0 } : r,
      ),
    });
    expect(news).toHaveLength(2);
    expect(plan(withStates('READY'), opts(5000)).revisions.filter((c) => c.to === 'FAILED')).toEqual([]);
    expect(plan(withStates('STARTING'), opts(5000)).revisions.filter((c) => c.to === 'FAILED')).toEqual([]);
    // The control: the second one crash-looping too fails the rollout.
    const both = plan({ ...withStates('BACKOFF'), replicas: withStates('BACKOFF').replicas.map((r) => (r.id === news[1]!.id ? { ...r, restartCount: 3 } : r)) }, opts(5000));
    expect(both.revisions.filter((c) => c.to === 'FAILED')).toHaveLength(1);
  });

  it('without an earlier revision a failed first deploy stops its replicas and clears the active revision', () => {
    const input: PlanInput = {
      service: service({ desiredReplicas: 1 }),
      revisions: [revision(1, { status: 'ROLLING_OUT', rolloutStartedAt: 0 })],
      replicas: [replica({ nodeId: 'id-a', state: 'BACKOFF' })],
      nodes: nodes3(),
    };
    const p = plan(input, opts(70_000));
    expect(p.activeRevisionId).toBeNull();
    expect(p.stop).toHaveLength(1);
    expect(p.events.map((e) => e.type)).toEqual(['revision.failed', 'service.rollout_abandoned']);
  });

  it('supersedes an abandoned rollout when a newer revision is deployed', () => {
    const input: PlanInput = {
      service: service({ desiredReplicas: 1, activeRevisionId: 'rev3' }),
      revisions: [revision(1), revision(2, { status: 'ROLLING_OUT' }), revision(3, { status: 'PENDING', rolloutStartedAt: null })],
      replicas: [replica({ nodeId: 'id-a' }), replica({ revisionId: 'rev2', nodeId: 'id-b', state: 'STARTING' })],
      nodes: nodes3(),
    };
    const p = plan(input, opts());
    expect(p.revisions).toEqual([
      { revisionId: 'rev3', from: 'PENDING', to: 'ROLLING_OUT', reason: null },
      { revisionId: 'rev2', from: 'ROLLING_OUT', to: 'SUPERSEDED', reason: 'replaced by revision 3' },
    ]);
    expect(p.stop.map((s) => s.reason)).toEqual(['replaced by revision 3 (was revision 2)']);
    expect(p.create).toHaveLength(1);
  });
});

describe('plan: minimum ready time', () => {
  it('does not let old replicas go for a new one that has only just become READY', () => {
    const input: PlanInput = {
      service: service({ desiredReplicas: 1, activeRevisionId: 'rev2' }),
      revisions: [revision(1), revision(2, { status: 'ROLLING_OUT', rolloutStartedAt: 0 })],
      replicas: [replica({ nodeId: 'id-a' }), replica({ revisionId: 'rev2', nodeId: 'id-b', readyAt: 1000 })],
      nodes: nodes3(),
    };
    const early = plan(input, { ...opts(1500), minReadyMs: 1000 });
    expect(early.stop).toEqual([]);
    expect(early.revisions).toEqual([]);
    expect(early.recheckAt).toBe(2000);
    const later = plan(input, { ...opts(2000), minReadyMs: 1000 });
    expect(later.stop.map((s) => s.replicaId)).toEqual([input.replicas[0]!.id]);
  });

  it('stops a retiring replica that is READY but not yet available at once', () => {
    const input: PlanInput = {
      service: service({ desiredReplicas: 1, activeRevisionId: 'rev1' }),
      revisions: [revision(1), revision(2, { status: 'FAILED' })],
      replicas: [replica({ nodeId: 'id-a', readyAt: 0 }), replica({ revisionId: 'rev2', nodeId: 'id-b', readyAt: 1400 })],
      nodes: nodes3(),
    };
    const p = plan(input, { ...opts(1500), minReadyMs: 1000 });
    expect(p.stop.map((s) => s.replicaId)).toEqual([input.replicas[1]!.id]);
  });
});

describe('plan: restart policies keep what they stopped (Docker --restart)', () => {
  const base = (policy: 'no' | 'on-failure' | 'always', replicas: ReplicaView[], status: RevisionView['status'] = 'ACTIVE'): PlanInput => ({
    service: service({ desiredReplicas: 2 }),
    revisions: [revision(1, { status, restartPolicy: policy })],
    replicas,
    nodes: nodes3(),
  });

  it('under "no", a replica that exited by itself keeps its slot: nothing is started again', () => {
    const done = replica({ nodeId: 'id-a', state: 'STOPPED', completed: true });
    const running = replica({ nodeId: 'id-b', state: 'READY' });
    const p = plan(base('no', [done, running]), opts());
    expect(p.create).toEqual([]);
    expect(p.stop).toEqual([]);
    expect(isEmptyPlan(p)).toBe(true);
  });

  it('under "on-failure", a replica FAILED after its retries is not replaced', () => {
    const failed = replica({ nodeId: 'id-a', state: 'FAILED', completed: true, lastExitReason: 'exited with code 3; gave up after 2 restarts' });
    const p = plan(base('on-failure', [failed, replica({ nodeId: 'id-b' })]), opts());
    expect(p.create).toEqual([]);
  });

  it('under "always", the same replicas are replaced (a policy-stopped replica only exists after a permanent start error)', () => {
    const done = replica({ nodeId: 'id-a', state: 'STOPPED', completed: true });
    const p = plan(base('always', [done, replica({ nodeId: 'id-b' })]), opts());
    expect(p.create).toHaveLength(1);
  });

  it('a replica Berth stopped (not completed) is replaced whatever the policy', () => {
    const stopped = replica({ nodeId: 'id-a', state: 'STOPPED' });
    const p = plan(base('no', [stopped, replica({ nodeId: 'id-b' })]), opts());
    expect(p.create).toHaveLength(1);
  });

  it('a run-once revision whose replicas all exit 0 completes its rollout (ACTIVE) without restarting them', () => {
    const input = base('no', [replica({ nodeId: 'id-a', state: 'STOPPED', completed: true }), replica({ nodeId: 'id-b', state: 'STOPPED', completed: true })], 'ROLLING_OUT');
    const p = plan(input, opts());
    expect(p.create).toEqual([]);
    expect(p.revisions).toEqual([{ revisionId: 'rev1', from: 'ROLLING_OUT', to: 'ACTIVE', reason: null }]);
  });

  it('scaling up adds replicas beside the completed ones; scaling down below them stops the running ones', () => {
    const done = replica({ nodeId: 'id-a', state: 'STOPPED', completed: true });
    const up = plan({ ...base('no', [done, replica({ nodeId: 'id-b' })]), service: service({ desiredReplicas: 4 }) }, opts());
    expect(up.create).toHaveLength(2);
    const running = replica({ nodeId: 'id-b' });
    const down = plan({ ...base('no', [done, running]), service: service({ desiredReplicas: 1 }) }, opts());
    expect(down.stop.map((s) => s.replicaId)).toEqual([running.id]);
  });

  it('completed replicas of an older revision do not count for the new one', () => {
    const input: PlanInput = {
      service: service({ desiredReplicas: 1, activeRevisionId: 'rev2' }),
      revisions: [revision(1, { status: 'ACTIVE', restartPolicy: 'no' }), revision(2, { status: 'PENDING', rolloutStartedAt: null, restartPolicy: 'no' })],
      replicas: [replica({ revisionId: 'rev1', nodeId: 'id-a', state: 'STOPPED', completed: true })],
      nodes: nodes3(),
    };
    expect(plan(input, opts()).create).toHaveLength(1);
  });
});
