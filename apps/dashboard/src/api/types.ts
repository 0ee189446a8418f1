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

// Services, revisions and replicas: the API's response contract, one definition in libs/contracts.
export type {
  CreateServiceInput,
  LogLine,
  HealthCheckSpec,
  ReplicaOut as Replica,
  RestartPolicy,
  RevisionConfig,
  RevisionOut as Revision,
  RevisionSummary,
  Scaling,
  ServiceDetail,
  ServiceSpec,
  ServiceSummary,
  ServiceMetrics,
} from '@berth/contracts';

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


export interface Member {
  userId: string;
  email: string;
  role: Role;
  createdAt: string;
}

export interface ApiToken {
  id: string;
  name: string;
  prefix: string;
  role: Role;
  lastUsedAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  createdAt: string;
}
