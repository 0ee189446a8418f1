import type { NodeStatus, ReplicaState, RevisionStatus } from '@berth/contracts';

/**
 * Read-only views the pure scheduler works on. The scheduler app builds them from Postgres rows;
 * nothing here knows about Prisma, Redis or the clock (time is passed in as `now`, epoch ms).
 */

export interface Resources {
  cpuMillis: number;
  memoryMiB: number;
  pids: number;
}

export interface NodeView {
  id: string;
  name: string;
  status: NodeStatus;
  labels: Record<string, string>;
  capacity: Resources;
  /** Sum of resources held by every allocated replica on the node (all services). */
  allocated: Resources;
  /** Image digests whose layers are cached on the node. */
  cachedImages: readonly string[];
  /** false: the node is part of the pod network but never takes replicas; absent = true. */
  schedulable?: boolean;
}

export type PlacementStrategy = 'SPREAD' | 'BINPACK';

export interface ServiceView {
  id: string;
  desiredReplicas: number;
  activeRevisionId: string | null;
  deleted: boolean;
  /** "25%" or an absolute count "1". */
  maxSurge: string;
  maxUnavailable: string;
  placement: PlacementStrategy;
  /** Node label equality constraints. */
  constraints: Record<string, string>;
  resources: Resources;
}

export interface RevisionView {
  id: string;
  number: number;
  status: RevisionStatus;
  imageDigest: string;
  /** epoch ms, null until the rollout started. */
  rolloutStartedAt: number | null;
  /** Per-revision override of the rollout deadline (from the revision's config snapshot). */
  rolloutDeadlineMs?: number | null;
  /** Per-revision override of how long a replica must stay READY to count as available. */
  minReadyMs?: number | null;
  /**
   * The revision's restart policy. Under `no` and `on-failure` a replica whose process ended and
   * that the policy left stopped (`ReplicaView.completed`) keeps its slot, as an exited Docker
   * container does: it is not replaced. Absent: `always`.
   */
  restartPolicy?: 'no' | 'always' | 'on-failure';
}

export interface ReplicaView {
  id: string;
  revisionId: string;
  nodeId: string | null;
  state: ReplicaState;
  generation: number;
  /** epoch ms */
  createdAt: number;
  pendingReason?: string | null;
  lastExitReason?: string | null;
  /** Restarts the agent decided for this replica so far (each follows an exit); feeds fail-fast. */
  restartCount?: number | null;
  /** epoch ms of the last move to READY. */
  readyAt?: number | null;
  /** STOPPED or FAILED by its own exit under its restart policy (not stopped by Berth). */
  completed?: boolean;
}
