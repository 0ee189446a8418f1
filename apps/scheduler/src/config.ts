import { z } from 'zod';
import { bool, clusterNetworkFields, commonSchema, databaseSchema, durationMs, ipv4List, port } from '@berth/config';

const positive = (def: number) => z.coerce.number().int().min(1).default(def);

export const schedulerConfigSchema = commonSchema.merge(databaseSchema).extend({
  BERTH_SCHEDULER_OPS_HOST: z.string().default('127.0.0.1'),
  BERTH_SCHEDULER_OPS_PORT: port(9101),
  /** BullMQ key prefix; every process of one installation must use the same. */
  BERTH_QUEUE_PREFIX: z.string().min(1).default('bull'),
  /** Parallel reconciles (different services; one service is never reconciled twice at once). */
  BERTH_RECONCILE_CONCURRENCY: positive(32),
  /**
   * Most services reconciled together (one read, one transaction, one command send); jobs that
   * arrive while a batch runs form the next one. 1 reconciles service by service.
   */
  BERTH_RECONCILE_BATCH: positive(16),
  BERTH_NODE_EVENTS_CONCURRENCY: positive(16),
  /** Every live service is re-enqueued this often, so a lost job or missed report heals. */
  BERTH_RESYNC_INTERVAL_MS: durationMs(10_000),
  /** Agents heartbeat this often (told to them at registration by the api). */
  BERTH_HEARTBEAT_INTERVAL_MS: durationMs(2_000),
  /** A node missing this many heartbeats in a row is DOWN and its replicas LOST. */
  BERTH_NODE_DOWN_AFTER_MISSED: positive(3),
  BERTH_LIVENESS_CHECK_INTERVAL_MS: durationMs(1_000),
  /** A rolling-out revision not fully READY after this long is FAILED and the previous one restored. */
  BERTH_ROLLOUT_DEADLINE_MS: durationMs(60_000),
  /** A replica must stay READY this long before a rollout or drain counts it and lets an old one go. */
  BERTH_MIN_READY_MS: durationMs(1_000),
  /** A start/stop command not acknowledged by a state change after this long is sent again. */
  BERTH_COMMAND_RESEND_AFTER_MS: durationMs(10_000),
  /** SIGTERM → SIGKILL grace given to agents when stopping a replica. */
  BERTH_STOP_GRACE_MS: durationMs(10_000),
  /** How long a worker may hold a job before BullMQ considers it stalled (crashed worker) and retries it. */
  BERTH_JOB_LOCK_MS: durationMs(30_000),
  /** The node snapshot (capacity + allocation) is reused this long between reconciles. */
  BERTH_NODE_SNAPSHOT_TTL_MS: durationMs(250),
  /**
   * Feasible nodes scored per placement (Nomad's limit iterator, Kubernetes' percentageOfNodesToScore):
   * each plan starts at a random node and scores this many feasible ones (more when the service
   * already has that many replicas); 0 scores every node. PENDING reasons always count the whole fleet.
   */
  BERTH_PLACEMENT_SAMPLE: z.coerce.number().int().min(0).default(64),
  /** Routing-table changes are coalesced and published this often. */
  BERTH_ROUTES_FLUSH_MS: durationMs(100),
  /**
   * Image GC on the nodes keeps, per live service, the images of this many of its latest revisions
   * that ran on the node (rollback to them needs no pull); the scheduler sends each node that set.
   */
  BERTH_IMAGE_KEEP_REVISIONS: positive(3),
  /** How often the nodes' image keep-sets are recomputed (sent only when they change). */
  BERTH_IMAGE_KEEP_INTERVAL_MS: durationMs(30_000),
  // The autoscaler (apps/scheduler/src/autoscaler; docs/gateway.md has the model).
  BERTH_AUTOSCALER_ENABLED: bool(true),
  BERTH_AUTOSCALER_TICK_MS: z.coerce.number().int().min(50).default(1000),
  BERTH_AUTOSCALER_STABLE_WINDOW_MS: durationMs(60_000),
  BERTH_AUTOSCALER_PANIC_WINDOW_MS: durationMs(6_000),
  BERTH_AUTOSCALER_PANIC_THRESHOLD: z.coerce.number().min(1).default(2),
  BERTH_AUTOSCALER_MAX_SCALE_DOWN_RATE: z.coerce.number().gt(1).default(2),
  BERTH_AUTOSCALER_MAX_SCALE_UP_RATE: z.coerce.number().gt(1).default(1000),
  BERTH_AUTOSCALER_SCALE_TO_ZERO_GRACE_MS: durationMs(30_000),
  /** Gateways whose last concurrency write is older than this are ignored. */
  BERTH_AUTOSCALER_SAMPLE_MAX_AGE_MS: durationMs(3_000),
  // The pod network (docs/cluster.md): same values as the api's.
  ...clusterNetworkFields,
  /** Addresses replicas may never reach besides the nodes' own (the control plane's when it is not a node). */
  BERTH_NETWORK_PROTECTED_CIDRS: ipv4List(),
  /** Network-sync triggers (node joins/leaves, replica addresses) within this window send one sync. */
  BERTH_NETWORK_SYNC_DEBOUNCE_MS: durationMs(200),
  /** Every node with a pod subnet gets its full state this often, changed or not, so a lost job heals. */
  BERTH_NETWORK_RESYNC_INTERVAL_MS: durationMs(30_000),
  /** Same prefix as the gateway's (routing table and concurrency keys). */
  BERTH_REDIS_KEY_PREFIX: z.string().default(''),
}).refine((c) => c.BERTH_AUTOSCALER_PANIC_WINDOW_MS <= c.BERTH_AUTOSCALER_STABLE_WINDOW_MS, {
  path: ['BERTH_AUTOSCALER_PANIC_WINDOW_MS'],
  message: 'must not exceed BERTH_AUTOSCALER_STABLE_WINDOW_MS',
});
export type SchedulerConfig = z.infer<typeof schedulerConfigSchema>;
