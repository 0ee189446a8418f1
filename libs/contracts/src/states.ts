/**
 * State machines for replicas, revisions and nodes. Every state write in Berth goes through
 * `assertTransition` (or `canTransition`), so an illegal move is refused in one place.
 *
 * The enum values equal the Prisma enums in prisma/schema.prisma; `test/integration/db` checks
 * that the two lists stay identical.
 */

export const ReplicaState = {
  PENDING: 'PENDING',
  SCHEDULED: 'SCHEDULED',
  PULLING: 'PULLING',
  STARTING: 'STARTING',
  RUNNING: 'RUNNING',
  READY: 'READY',
  EXITED: 'EXITED',
  BACKOFF: 'BACKOFF',
  FAILED: 'FAILED',
  STOPPING: 'STOPPING',
  STOPPED: 'STOPPED',
  LOST: 'LOST',
} as const;
export type ReplicaState = (typeof ReplicaState)[keyof typeof ReplicaState];

export const RevisionStatus = {
  PENDING: 'PENDING',
  ROLLING_OUT: 'ROLLING_OUT',
  ACTIVE: 'ACTIVE',
  SUPERSEDED: 'SUPERSEDED',
  FAILED: 'FAILED',
} as const;
export type RevisionStatus = (typeof RevisionStatus)[keyof typeof RevisionStatus];

export const NodeStatus = {
  READY: 'READY',
  DRAINING: 'DRAINING',
  DOWN: 'DOWN',
} as const;
export type NodeStatus = (typeof NodeStatus)[keyof typeof NodeStatus];

export type TransitionTable<S extends string> = Readonly<Record<S, readonly S[]>>;

const R = ReplicaState;
/**
 * Replica lifecycle:
 *   PENDING → SCHEDULED → PULLING → STARTING → RUNNING → READY
 *   RUNNING|READY → EXITED → STARTING (restart) | BACKOFF (waiting to restart) | FAILED (policy exhausted)
 *   BACKOFF → STARTING
 *   any live state → STOPPING → STOPPED
 *   SCHEDULED..READY (and EXITED/BACKOFF/STOPPING) → LOST when the node goes DOWN
 * STOPPED, FAILED and LOST are terminal: a replacement is a new replica.
 * STARTING → EXITED covers a process that dies before it ever ran; PULLING → FAILED a pull that
 * cannot succeed (unknown manifest, refused layer).
 */
export const REPLICA_TRANSITIONS: TransitionTable<ReplicaState> = {
  PENDING: [R.SCHEDULED, R.STOPPING, R.STOPPED],
  SCHEDULED: [R.PULLING, R.STARTING, R.STOPPING, R.LOST, R.FAILED],
  PULLING: [R.STARTING, R.FAILED, R.STOPPING, R.LOST],
  STARTING: [R.RUNNING, R.EXITED, R.FAILED, R.STOPPING, R.LOST],
  RUNNING: [R.READY, R.EXITED, R.STOPPING, R.LOST],
  READY: [R.RUNNING, R.EXITED, R.STOPPING, R.LOST],
  EXITED: [R.STARTING, R.BACKOFF, R.FAILED, R.STOPPING, R.STOPPED, R.LOST],
  BACKOFF: [R.STARTING, R.FAILED, R.STOPPING, R.LOST],
  FAILED: [],
  STOPPING: [R.STOPPED, R.LOST],
  STOPPED: [],
  LOST: [],
};

const V = RevisionStatus;
/** PENDING → ROLLING_OUT → ACTIVE → SUPERSEDED; ROLLING_OUT → FAILED (previous revision restored). */
export const REVISION_TRANSITIONS: TransitionTable<RevisionStatus> = {
  PENDING: [V.ROLLING_OUT, V.SUPERSEDED, V.FAILED],
  ROLLING_OUT: [V.ACTIVE, V.FAILED, V.SUPERSEDED],
  ACTIVE: [V.SUPERSEDED],
  SUPERSEDED: [V.ROLLING_OUT],
  FAILED: [],
};

const N = NodeStatus;
/** READY ↔ DRAINING; READY|DRAINING → DOWN → READY (a returning node comes back READY). */
export const NODE_TRANSITIONS: TransitionTable<NodeStatus> = {
  READY: [N.DRAINING, N.DOWN],
  DRAINING: [N.READY, N.DOWN],
  DOWN: [N.READY],
};

export const REPLICA_TERMINAL: readonly ReplicaState[] = [R.STOPPED, R.FAILED, R.LOST];
/** States in which a replica holds resources on its node. */
export const REPLICA_ALLOCATED: readonly ReplicaState[] = [
  R.SCHEDULED,
  R.PULLING,
  R.STARTING,
  R.RUNNING,
  R.READY,
  R.EXITED,
  R.BACKOFF,
  R.STOPPING,
];

export class IllegalTransitionError extends Error {
  readonly code = 'ILLEGAL_TRANSITION';
  constructor(
    readonly machine: string,
    readonly from: string,
    readonly to: string,
  ) {
    super(`${machine}: illegal transition ${from} → ${to}`);
    this.name = 'IllegalTransitionError';
  }
}

export function canTransition<S extends string>(table: TransitionTable<S>, from: S, to: S): boolean {
  return table[from]?.includes(to) ?? false;
}

export function assertTransition<S extends string>(machine: string, table: TransitionTable<S>, from: S, to: S): void {
  if (!canTransition(table, from, to)) throw new IllegalTransitionError(machine, from, to);
}

export const assertReplicaTransition = (from: ReplicaState, to: ReplicaState) =>
  assertTransition('replica', REPLICA_TRANSITIONS, from, to);
export const assertRevisionTransition = (from: RevisionStatus, to: RevisionStatus) =>
  assertTransition('revision', REVISION_TRANSITIONS, from, to);
export const assertNodeTransition = (from: NodeStatus, to: NodeStatus) =>
  assertTransition('node', NODE_TRANSITIONS, from, to);

/** The states a replica may be in for `from` to be left toward `to`: the WHERE clause of a guarded update. */
export function sourcesOf<S extends string>(table: TransitionTable<S>, to: S): S[] {
  return (Object.keys(table) as S[]).filter((from) => table[from].includes(to));
}
