/** Shapes of the public REST API (/v1) as the dashboard reads them. */

export type Role = 'viewer' | 'deployer' | 'admin';

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export interface ApiErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

export interface LoginResponse {
  accessToken: string;
  tokenType: 'Bearer';
  expiresIn: number;
  user: { id: string; email: string };
}

export type WhoAmI =
  | { kind: 'token'; tokenId: string; name: string; project: string; role: Role }
  | { kind: 'user'; userId: string; email: string };

export interface Project {
  id: string;
  slug: string;
  name: string;
  operator: boolean;
  role: Role;
}

export type ReplicaState =
  | 'PENDING'
  | 'SCHEDULED'
  | 'PULLING'
  | 'STARTING'
  | 'RUNNING'
  | 'READY'
  | 'EXITED'
  | 'BACKOFF'
  | 'FAILED'
  | 'STOPPING'
  | 'STOPPED'
  | 'LOST';
export type RevisionStatus = 'PENDING' | 'ROLLING_OUT' | 'ACTIVE' | 'SUPERSEDED' | 'FAILED';
export type NodeStatus = 'READY' | 'DRAINING' | 'DOWN';

export interface RevisionSummary {
  number: number;
  image: string;
  tag: string | null;
  digest: string;
  status: RevisionStatus;
  reason: string;
  createdAt: string;
}

export interface Revision extends RevisionSummary {
  id: string;
  statusReason: string | null;
  config: Record<string, unknown>;
  createdBy: string;
  createdByTokenId: string | null;
  sourceRevisionId: string | null;
  activatedAt: string | null;
  active: boolean;
}

export interface ServiceSummary {
  id: string;
  name: string;
  project: string;
  url: string;
  generation: number;
  desiredReplicas: number;
  /** The autoscaler's bounds and, in `summary`, what it does with them. */
  scaling: Scaling & { summary: string; floorFromReplicas?: boolean };
  /** Replica counts (the list has them too). */
  replicas: ReplicaCounts;
  activeRevision: RevisionSummary | null;
  createdAt: string;
  updatedAt: string;
}

export interface ReplicaCounts {
  desired: number;
  ready: number;
  byState: Partial<Record<ReplicaState, number>>;
}

export interface Scaling {
  min: number;
  max: number;
  targetConcurrency: number;
}

export interface ServiceDetail extends ServiceSummary {
  spec: { port: number; scaling: Scaling; [k: string]: unknown };
}

export interface Replica {
  id: string;
  revision: number;
  node: string | null;
  state: ReplicaState;
  restarts: number;
  lastExit: { code: number | null; reason: string | null } | null;
  pendingReason: string | null;
  address: string | null;
  port: number | null;
  createdAt: string;
  startedAt: string | null;
  readyAt: string | null;
  stoppedAt: string | null;
}

export interface ResolvedImage {
  reference: string;
  tag: string | null;
  versionId: string;
  digest: string;
  indexDigest: string | null;
  mediaType: string;
  platform: string;
  configDigest: string;
  totalSize: number;
  resolvedAt: string;
  image: { id: string; registry: string; repository: string; createdAt: string };
}

export interface ImageRow {
  id: string;
  registry: string;
  repository: string;
  createdAt: string;
  versions: number;
  tags: number;
}

export interface ImageVersion {
  versionId: string;
  digest: string;
  platform: string;
  totalSize: number;
  resolvedAt: string;
  tags: string[];
}

export interface NodeRow {
  id: string;
  name: string;
  status: NodeStatus;
  address: string;
  labels: Record<string, string>;
  capacity: { cpuMillis: number; memoryMiB: number; pids: number };
  allocated: { cpuMillis: number; memoryMiB: number; pids: number };
  replicas: number;
  agentVersion: string | null;
  lastHeartbeatAt: string | null;
  joinedAt: string;
}

export interface EventRow {
  id: string;
  type: string;
  level: string;
  message: string;
  actor: string | null;
  createdAt: string;
}

export interface LogLine {
  replicaId: string;
  id: string;
  ts: string;
  stream: 'stdout' | 'stderr';
  line: string;
}
