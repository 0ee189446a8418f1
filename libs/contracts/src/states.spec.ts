import {
  IllegalTransitionError,
  NODE_TRANSITIONS,
  NodeStatus,
  REPLICA_TRANSITIONS,
  REVISION_TRANSITIONS,
  ReplicaState,
  RevisionStatus,
  TransitionTable,
  assertNodeTransition,
  assertReplicaTransition,
  assertRevisionTransition,
  canTransition,
  sourcesOf,
} from './states';

/** Every (from, to) pair not in the table must be refused; every pair in it accepted. */
function exhaustive<S extends string>(
  name: string,
  table: TransitionTable<S>,
  states: readonly S[],
  assertFn: (f: S, t: S) => void,
) {
  describe(`${name} transitions`, () => {
    it('lists every state as a source', () => {
      expect(Object.keys(table).sort()).toEqual([...states].sort());
    });
    for (const from of states) {
      for (const to of states) {
        const allowed = table[from].includes(to);
        it(`${allowed ? 'allows' : 'refuses'} ${from} → ${to}`, () => {
          if (allowed) expect(() => assertFn(from, to)).not.toThrow();
          else expect(() => assertFn(from, to)).toThrow(IllegalTransitionError);
        });
      }
    }
  });
}

exhaustive('replica', REPLICA_TRANSITIONS, Object.values(ReplicaState), assertReplicaTransition);
exhaustive('revision', REVISION_TRANSITIONS, Object.values(RevisionStatus), assertRevisionTransition);
exhaustive('node', NODE_TRANSITIONS, Object.values(NodeStatus), assertNodeTransition);

describe('replica lifecycle from DESIGN.md', () => {
  const path = (...s: ReplicaState[]) => s.slice(1).every((to, i) => canTransition(REPLICA_TRANSITIONS, s[i], to));
  it('happy path', () => expect(path('PENDING', 'SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'READY')).toBe(true));
  it('crash and restart', () => expect(path('READY', 'EXITED', 'BACKOFF', 'STARTING', 'RUNNING')).toBe(true));
  it('restart policy exhausted', () => expect(path('RUNNING', 'EXITED', 'FAILED')).toBe(true));
  it('stop', () => expect(path('READY', 'STOPPING', 'STOPPED')).toBe(true));
  it('node lost', () => {
    for (const s of ['SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'READY'] as const)
      expect(canTransition(REPLICA_TRANSITIONS, s, 'LOST')).toBe(true);
  });
  it('terminal states have no way out', () => {
    for (const s of ['STOPPED', 'FAILED', 'LOST'] as const) expect(REPLICA_TRANSITIONS[s]).toHaveLength(0);
  });
  it('cannot skip from PENDING straight to READY', () => expect(canTransition(REPLICA_TRANSITIONS, 'PENDING', 'READY')).toBe(false));
  it('error names the machine and both states', () => {
    expect(() => assertReplicaTransition('STOPPED', 'READY')).toThrow('replica: illegal transition STOPPED → READY');
  });
  it('sourcesOf gives the guard for a conditional update', () => {
    expect(sourcesOf(REPLICA_TRANSITIONS, 'READY').sort()).toEqual(['RUNNING']);
    expect(sourcesOf(NODE_TRANSITIONS, 'DOWN').sort()).toEqual(['DRAINING', 'READY']);
  });
});
