/**
 * Every BullMQ queue, job name and payload in Berth. Producers and consumers import from here;
 * `jobId()` is the only way a job id is built (BullMQ forbids ':' in custom ids).
 *
 * Which process consumes which queue, and what each carries, is one registry at the end of this
 * file (`QUEUES`, `QueuePayloads`); the scheduler and the agent check it at start.
 */

import { z } from 'zod';
import {
  CommandSchema,
  ConfigContractError,
  EnvSchema,
  HealthCheckSchema,
  PortSchema,
  ResourcesSchema,
  RestartPolicySchema,
  zodIssues,
} from './service-config';

export const QueueName = {
  Reconcile: 'reconcile',
  NodeEvents: 'node-events',
  Autoscale: 'autoscale',
} as const;
export type QueueName = (typeof QueueName)[keyof typeof QueueName];

export const nodeQueueName = (nodeId: string): string => `node-${nodeId}`;

/** Builds a BullMQ job id from parts; ':' is not allowed in custom ids, so parts are joined with '.'. */
export function jobId(...parts: (string | number)[]): string {
  for (const p of parts) {
    const s = String(p);
    if (s.length === 0 || s.includes(':')) throw new Error(`jobId part ${JSON.stringify(s)} is empty or contains ':'`);
  }
  return parts.join('.');
}

// ---------------------------------------------------------------- reconcile

export interface ReconcileJob {
  kind: 'reconcile';
  serviceId: string;
  /** What asked for it, for logs and events: "deploy", "scale", "resync", "wake", "node-down", ... */
  cause: string;
}

/**
 * BullMQ options for every `reconcile` trigger (api, scheduler, autoscaler). Deduplicated per
 * service: while a run waits, further triggers coalesce into it; while one is active, exactly one
 * more is kept (`keepLastIfActive`), so a change made during a reconcile is never dropped.
 */
export function reconcileJobOptions(serviceId: string) {
  return {
    deduplication: { id: jobId('reconcile', serviceId), keepLastIfActive: true },
    removeOnComplete: true,
    removeOnFail: 100,
    attempts: 5,
    backoff: { type: 'exponential' as const, delay: 200 },
  };
}

// ---------------------------------------------------------------- scheduler → agent

/**
 * Everything an agent needs to run one replica; the agent never reads Postgres. Built by the
 * scheduler from a parsed RevisionConfig (`RUN_FIELDS`), parsed by the agent with
 * `parseNodeCommand` before it acts on it.
 */
export const ReplicaSpecSchema = z.strictObject({
  replicaId: z.string().min(1),
  serviceId: z.string().min(1),
  /**
   * The project (tenant) the replica belongs to: the key of its address in network-sync `projects`;
   * the agent isolates the replica from other projects' replicas from its first packet. Optional
   * only so containers started before it existed still recover (they are isolated from every pod).
   */
  projectId: z.string().min(1).optional(),
  projectSlug: z.string().min(1),
  serviceName: z.string().min(1),
  revisionId: z.string().min(1),
  revisionNumber: z.int().min(1),
  generation: z.int().min(0),
  image: z.strictObject({ reference: z.string(), digest: z.string(), registry: z.string(), repository: z.string() }),
  /** null: a worker; no $PORT, no route. */
  port: PortSchema.nullable(),
  env: EnvSchema,
  command: CommandSchema.nullable(),
  resources: ResourcesSchema,
  restart: RestartPolicySchema,
  healthCheck: HealthCheckSchema.nullable(),
  readOnlyRootfs: z.boolean().optional(),
  user: z.string().nullable().optional(),
});
export type ReplicaSpec = z.infer<typeof ReplicaSpecSchema>;

export const StartReplicaJobSchema = z.strictObject({ kind: z.literal('start-replica'), spec: ReplicaSpecSchema });
export type StartReplicaJob = z.infer<typeof StartReplicaJobSchema>;

export const StopReplicaJobSchema = z.strictObject({
  kind: z.literal('stop-replica'),
  replicaId: z.string().min(1),
  generation: z.int(),
  reason: z.string(),
  graceMs: z.int().min(0),
});
export type StopReplicaJob = z.infer<typeof StopReplicaJobSchema>;

/**
 * Tells an agent the full set of replicas it should run; anything else it has is stopped.
 * `listedAt` (ms since the epoch, taken before the list was read) fences the list: a start command
 * queued at or after it may be for a placement the list could not see yet, so it is kept.
 */
export const SyncNodeJobSchema = z.strictObject({ kind: z.literal('sync-node'), replicaIds: z.array(z.string()), listedAt: z.number().optional() });
export type SyncNodeJob = z.infer<typeof SyncNodeJobSchema>;

/**
 * The image digests a node must keep through image garbage collection besides those of the
 * replicas it runs: for every live service, the images of its last few revisions
 * (`BERTH_IMAGE_KEEP_REVISIONS`) that ran on this node, so a rollback to them needs no pull.
 * Images of deleted services are not listed. The full set each time (not a delta); the agent keeps
 * the newest by `computedAt` on disk, so it survives an agent restart.
 */
export const KeepImagesJobSchema = z.strictObject({
  kind: z.literal('keep-images'),
  digests: z.array(z.string()),
  /** ms since the epoch when the set was read. */
  computedAt: z.number(),
});
export type KeepImagesJob = z.infer<typeof KeepImagesJobSchema>;

export const Ipv4Schema = z.string().regex(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/, 'must be an IPv4 address');
export const Ipv4CidrSchema = z.string().regex(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/, 'must be an IPv4 CIDR');

/**
 * How pod traffic crosses hosts, chosen per cluster (`BERTH_NETWORK_MODE`): `host-gw` routes each
 * node's pod subnet through its underlay address (nodes share an L2/L3 network, like flannel's
 * host-gw); `wireguard` carries it through an encrypted WireGuard interface per node.
 */
export const NetworkModeSchema = z.enum(['host-gw', 'wireguard']);
export type NetworkMode = z.infer<typeof NetworkModeSchema>;

/** One other node of the pod network, as a node needs it to reach that node's replicas. */
export const NetworkPeerSchema = z.strictObject({
  nodeId: z.string().min(1),
  nodeName: z.string().min(1),
  /** Where that node's pod subnet is routed to (its underlay address). */
  underlay: Ipv4Schema,
  podCidr: Ipv4CidrSchema,
  /** wireguard mode: the peer's public key and listening port; null in host-gw mode or before the peer reported one. */
  wireguard: z.strictObject({ publicKey: z.string().min(1), port: z.int().min(1).max(65535) }).nullable(),
});
export type NetworkPeer = z.infer<typeof NetworkPeerSchema>;

/**
 * The pod network as one node must program it: routes (or WireGuard peers) to every other READY or
 * DRAINING node's subnet, and, for tenant isolation, the addresses of every project's replicas
 * cluster-wide (replicas of one project reach each other; of different projects, never). The full
 * state each time, not a delta; the agent applies the newest by `computedAt` and keeps it on disk,
 * so an agent restart re-applies it before the next sync arrives.
 */
export const NetworkSyncJobSchema = z.strictObject({
  kind: z.literal('network-sync'),
  mode: NetworkModeSchema,
  /** The whole pod range (BERTH_CLUSTER_CIDR): traffic inside it is never masqueraded. */
  clusterCidr: Ipv4CidrSchema,
  /** Every other node with a pod subnet that is not DOWN (a DOWN node's routes are withdrawn). */
  peers: z.array(NetworkPeerSchema),
  /** Project id → addresses of its replicas on every node (isolation sets). */
  projects: z.record(z.string(), z.array(Ipv4Schema)),
  /** Underlay addresses of every node and control-plane host: replicas may not open connections to them. */
  infrastructure: z.array(z.union([Ipv4Schema, Ipv4CidrSchema])),
  /** ms since the epoch when the state was read. */
  computedAt: z.number(),
});
export type NetworkSyncJob = z.infer<typeof NetworkSyncJobSchema>;

/**
 * BullMQ options of a network-sync command. One per node and state (`computedAt`); the producer
 * removes its previous one still waiting on that node's queue before adding a new one (only the
 * newest state matters: it is the full state), so a node's queue holds at most one waiting sync.
 */
export function networkSyncJobOptions(nodeId: string, computedAt: number) {
  return { jobId: jobId('netsync', nodeId, computedAt), removeOnComplete: true, removeOnFail: 10 };
}

/** Everything a node queue carries (scheduler → agent); one schema, parsed by the agent. */
const NodeCommandJobSchema = z.discriminatedUnion('kind', [StartReplicaJobSchema, StopReplicaJobSchema, SyncNodeJobSchema, KeepImagesJobSchema, NetworkSyncJobSchema]);
export type NodeCommandJob = z.infer<typeof NodeCommandJobSchema>;

/** What an agent does with a job from its node queue: parse it, never guess (ConfigContractError names what is off). */
export function parseNodeCommand(data: unknown): NodeCommandJob {
  const r = NodeCommandJobSchema.safeParse(data);
  if (!r.success) throw new ConfigContractError('node command', zodIssues(r.error));
  return r.data;
}

// ---------------------------------------------------------------- agent → scheduler

export interface NodeCapacity {
  cpuMillis: number;
  memoryMiB: number;
  pids: number;
}

export interface NodeHeartbeatJob {
  kind: 'heartbeat';
  nodeId: string;
  at: string;
  cachedImages: string[];
  runningReplicaIds: string[];
}

export interface ReplicaReportJob {
  kind: 'replica-report';
  nodeId: string;
  replicaId: string;
  /** Generation of the command the agent is acting on; stale reports are ignored. */
  generation: number;
  state: 'PULLING' | 'STARTING' | 'RUNNING' | 'READY' | 'EXITED' | 'BACKOFF' | 'FAILED' | 'STOPPED';
  at: string;
  address?: string;
  port?: number;
  exitCode?: number | null;
  reason?: string;
  restartCount?: number;
  /** STOPPED/FAILED by the process's own exit, kept stopped by the restart policy (no / on-failure). */
  completed?: boolean;
  /**
   * Increases with every report an agent sends (across agent restarts): the scheduler may process
   * reports concurrently, and drops one older than a report it already applied for the replica.
   */
  seq?: number;
}

export interface NodeEventJob {
  kind: 'node-event';
  nodeId: string;
  replicaId?: string;
  type: string;
  level: 'INFO' | 'WARN' | 'ERROR';
  message: string;
  data?: Record<string, unknown>;
  at: string;
}

export type NodeEventsJob = NodeHeartbeatJob | ReplicaReportJob | NodeEventJob;

export type { WakeJob } from './routing';
import type { WakeJob } from './routing';

export type JobPayload = ReconcileJob | NodeCommandJob | NodeEventsJob | WakeJob;
export type JobKind = JobPayload['kind'];

// ---------------------------------------------------------------- the queue registry

/** The processes that consume queues. */
export type QueueConsumerApp = 'scheduler' | 'agent';

/**
 * Every queue, who consumes it and who produces it. A node's command queue is one entry whatever
 * the node: its name is `nodeQueueName(nodeId)`, known to an agent once it has registered.
 */
export const QUEUES = {
  [QueueName.Reconcile]: { consumer: 'scheduler', producers: 'api, scheduler (resync, rollouts), autoscaler' },
  [QueueName.NodeEvents]: { consumer: 'scheduler', producers: 'agents (reports, heartbeats, node events)' },
  [QueueName.Autoscale]: { consumer: 'scheduler', producers: 'gateways (wake-ups of services at zero)' },
  'node-<nodeId>': { consumer: 'agent', producers: 'scheduler (start, stop, sync, keep-images, network-sync)' },
} as const satisfies Record<string, { consumer: QueueConsumerApp; producers: string }>;
export type QueueKey = keyof typeof QUEUES;

/** The payload type of each queue of the registry. */
export interface QueuePayloads {
  [QueueName.Reconcile]: ReconcileJob;
  [QueueName.NodeEvents]: NodeEventsJob;
  [QueueName.Autoscale]: WakeJob;
  'node-<nodeId>': NodeCommandJob;
}
// The two maps name the same queues (a compile error here means one of them lacks a queue).
const _sameQueues: Record<QueueKey, true> = { reconcile: true, 'node-events': true, autoscale: true, 'node-<nodeId>': true } satisfies Record<keyof QueuePayloads, true>;
void _sameQueues;

/** The queues an app consumes. */
export type QueuesConsumedBy<A extends QueueConsumerApp> = { [K in QueueKey]: (typeof QUEUES)[K]['consumer'] extends A ? K : never }[QueueKey];

/** The part of a BullMQ job a handler sees (BullMQ's `Job<P>` satisfies it). */
export interface QueueJob<P> {
  id?: string;
  name: string;
  data: P;
  timestamp: number;
}

/** Handles one job of queue K: resolves when done, throws to fail the job (BullMQ retries by its options). */
export interface QueueHandler<K extends QueueKey> {
  process(job: QueueJob<QueuePayloads[K]>): Promise<unknown>;
}

/**
 * What an app provides: for each queue it consumes, the class that handles it (in the apps: a
 * `@nestjs/bullmq` processor). Missing one is a compile error; `assertQueueConsumers` checks the
 * running application at start as well.
 */
export type QueueHandlers<A extends QueueConsumerApp> = { [K in QueuesConsumedBy<A>]: abstract new (...args: any[]) => QueueHandler<K> };

/** The registry entry of a concrete queue name (`node-7f…` → `node-<nodeId>`), or null for an unknown queue. */
export function queueKeyOf(name: string): QueueKey | null {
  if (Object.prototype.hasOwnProperty.call(QUEUES, name) && name !== 'node-<nodeId>') return name as QueueKey;
  if (/^node-[A-Za-z0-9_-]+$/.test(name)) return 'node-<nodeId>';
  return null;
}

export class QueueRegistryError extends Error {
  override readonly name = 'QueueRegistryError';
}

/**
 * Start-up check of an app's queue consumers (the concrete queue names its processors consume):
 * every queue the registry gives the app has a consumer, and nothing consumes a queue that is not
 * the app's. Throws QueueRegistryError naming what is off.
 */
export function assertQueueConsumers(app: QueueConsumerApp, consumed: readonly string[]): void {
  const problems: string[] = [];
  const have = new Set<QueueKey>();
  for (const name of consumed) {
    const key = queueKeyOf(name);
    if (!key) problems.push(`queue "${name}" is not in the queue registry (libs/contracts/src/queues.ts QUEUES)`);
    else if (QUEUES[key].consumer !== app) problems.push(`queue "${name}" is consumed by the ${QUEUES[key].consumer}, not the ${app}`);
    else have.add(key);
  }
  for (const [key, q] of Object.entries(QUEUES) as [QueueKey, (typeof QUEUES)[QueueKey]][]) {
    if (q.consumer === app && !have.has(key)) problems.push(`queue "${key}" has no consumer in the ${app} (add its @Processor provider to the ${app}'s module)`);
  }
  if (problems.length) throw new QueueRegistryError(`${app}: ${problems.join('; ')}`);
}

// ---------------------------------------------------------------- Redis keys (not queues)

/** Redis keys shared between processes, built in one place. */
export const RedisKey = {
  /** Hash: `<project>/<service>` → JSON RouteEntry, published by the scheduler. */
  routes: 'berth:routes',
  /** Pub/sub channel announcing route changes. */
  routesChannel: 'berth:routes:changed',
  /**
   * Per-gateway in-flight concurrency: hash serviceId → average in-flight requests over the gateway's
   * last one-second interval; expires a few seconds after the gateway stops writing.
   */
  concurrency: (gatewayId: string) => `berth:concurrency:${gatewayId}`,
  /** Sorted set gatewayId → epoch ms of its last concurrency write; the autoscaler sums the live ones. */
  concurrencyGateways: 'berth:concurrency:gateways',
  /** Lease held by the scheduler instance whose autoscaler makes decisions (others only sample). */
  autoscalerLeader: 'berth:autoscaler:leader',
  /**
   * Stream of log lines per replica, shipped by agents (the api serves them as SSE).
   * Contract: the agent `XADD <key> MAXLEN ~ 10000 * ts <ISO-8601 time> stream <stdout|stderr> line <text without newline>`;
   * one entry per line, in order. The api reads the newest entries with XREVRANGE (tail) and new
   * ones with XREAD BLOCK (follow), merging a service's replicas by `ts`. Keys may expire once the
   * replica is gone (agents/scheduler may set a TTL); readers treat a missing key as no lines.
   */
  logs: (replicaId: string) => `berth:logs:${replicaId}`,
  /**
   * Hash of image pull progress per replica, written by the agent while PULLING: field = layer
   * digest, value = JSON `PullLayerRecord` `{done, total, cached}` (bytes; cached: the layer was on
   * the node already, nothing downloaded). Expires an hour after the last write; the api shows it on
   * the replica list (`pull`) so clients can draw per-node pull progress, or say "cached".
   */
  pull: (replicaId: string) => `berth:pull:${replicaId}`,
  /**
   * Hash of one service's traffic in one minute (`minute` = ms since the epoch / 60 000): fields and
   * their writers in service-metrics.ts (`MetricsField`); expires after SERVICE_METRICS_RETENTION_MINUTES.
   */
  serviceMetrics: (serviceId: string, minute: number) => `berth:metrics:${serviceId}:${minute}`,
  /** Node registration results keyed by the agent's registration request id. */
  nodeSession: (nodeId: string) => `berth:node:${nodeId}`,
} as const;

/** One layer's entry in `RedisKey.pull(replicaId)` (agent → api). `cached` is absent from older agents. */
export const PullLayerRecordSchema = z.object({
  done: z.number().nonnegative(),
  total: z.number().nonnegative(),
  cached: z.boolean().optional(),
});
export type PullLayerRecord = z.infer<typeof PullLayerRecordSchema>;
