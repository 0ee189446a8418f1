import { Worker, type ConnectionOptions } from 'bullmq';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Histogram, type Registry } from 'prom-client';
import { QueueName, type NodeEventsJob, type ReconcileJob } from '@berth/contracts';
import { createReconcilePool, NodeRepository, ReplicaRepository, SchedulerRepository, type PrismaService } from '@berth/db';
import type { SchedulerConfig } from './config';
import { ImageKeepPublisher } from './node-events/image-keep.publisher';
import { LivenessMonitor } from './node-events/liveness.monitor';
import { NodeEventsService } from './node-events/node-events.service';
import { SchedulerQueues } from './queues';
import { NodeCommandBatch } from './reconcile/node-command-batch';
import { NodeSnapshotCache } from './reconcile/node-snapshot.cache';
import { ReconcileBatcher } from './reconcile/reconcile-batcher';
import { ReconcileService, type ReconcileObserver } from './reconcile/reconcile.service';
import { RoutePublisher } from './routing/route-publisher';

export type SchedulerSettings = Pick<
  SchedulerConfig,
  | 'BERTH_QUEUE_PREFIX'
  | 'BERTH_RECONCILE_CONCURRENCY'
  | 'BERTH_NODE_EVENTS_CONCURRENCY'
  | 'BERTH_RESYNC_INTERVAL_MS'
  | 'BERTH_HEARTBEAT_INTERVAL_MS'
  | 'BERTH_NODE_DOWN_AFTER_MISSED'
  | 'BERTH_LIVENESS_CHECK_INTERVAL_MS'
  | 'BERTH_ROLLOUT_DEADLINE_MS'
  | 'BERTH_MIN_READY_MS'
  | 'BERTH_COMMAND_RESEND_AFTER_MS'
  | 'BERTH_STOP_GRACE_MS'
  | 'BERTH_JOB_LOCK_MS'
  | 'BERTH_NODE_SNAPSHOT_TTL_MS'
  | 'BERTH_ROUTES_FLUSH_MS'
> &
  Partial<Pick<SchedulerConfig, 'BERTH_PLACEMENT_SAMPLE' | 'BERTH_RECONCILE_BATCH' | 'BERTH_IMAGE_KEEP_REVISIONS' | 'BERTH_IMAGE_KEEP_INTERVAL_MS'>>;

export interface RunningScheduler {
  reconcile: ReconcileService;
  liveness: LivenessMonitor;
  routes: RoutePublisher;
  queues: SchedulerQueues;
  nodeEvents: NodeEventsService;
  resync(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Wires the scheduler: the `reconcile` and `node-events` workers, the liveness monitor, the periodic
 * resync and the routing-table publisher. Used by main.ts and, in-process, by integration tests.
 */
export function startScheduler(deps: {
  prisma: PrismaService;
  /** Postgres for the reconcile's reads/writes (a small pg pool of its own, next to Prisma's). */
  databaseUrl: string;
  /** Hooks on the reconcile's phases (bench/schedule); none in production. */
  reconcileObserver?: ReconcileObserver;
  redis: Redis;
  connection: ConnectionOptions;
  settings: SchedulerSettings;
  log: Logger;
  registry?: Registry;
}): RunningScheduler {
  const { prisma, redis, connection, settings: s, log } = deps;
  const reconcilePool = createReconcilePool(deps.databaseUrl);
  reconcilePool.on('error', (err) => log.warn({ err: err.message }, 'idle reconcile pool connection failed'));
  const schedulerRepo = new SchedulerRepository(prisma, reconcilePool);
  const nodeRepo = new NodeRepository(prisma);
  const replicaRepo = new ReplicaRepository(prisma);
  const queues = new SchedulerQueues(connection, s.BERTH_QUEUE_PREFIX);
  const routes = new RoutePublisher(schedulerRepo, redis, log.child({ part: 'routes' }), s.BERTH_ROUTES_FLUSH_MS);
  const commands = new NodeCommandBatch(connection, s.BERTH_QUEUE_PREFIX);
  const snapshot = new NodeSnapshotCache(schedulerRepo, s.BERTH_NODE_SNAPSHOT_TTL_MS);
  const reconcile = new ReconcileService(schedulerRepo, snapshot, queues, routes, log.child({ part: 'reconcile' }), {
    rolloutDeadlineMs: s.BERTH_ROLLOUT_DEADLINE_MS,
    minReadyMs: s.BERTH_MIN_READY_MS,
    commandResendAfterMs: s.BERTH_COMMAND_RESEND_AFTER_MS,
    stopGraceMs: s.BERTH_STOP_GRACE_MS,
    placementSample: s.BERTH_PLACEMENT_SAMPLE ?? 64,
    commands,
    observer: deps.reconcileObserver,
  });
  const batcher = new ReconcileBatcher(
    (items) => reconcile.reconcileBatch(items),
    (id, cause) => reconcile.reconcile(id, cause),
    s.BERTH_RECONCILE_BATCH ?? 16,
  );
  const liveness = new LivenessMonitor(nodeRepo, schedulerRepo, queues, log.child({ part: 'liveness' }), {
    heartbeatIntervalMs: s.BERTH_HEARTBEAT_INTERVAL_MS,
    missedBeats: s.BERTH_NODE_DOWN_AFTER_MISSED,
    checkIntervalMs: s.BERTH_LIVENESS_CHECK_INTERVAL_MS,
  });
  const imageKeep = new ImageKeepPublisher(schedulerRepo, queues, log.child({ part: 'image-keep' }), {
    intervalMs: s.BERTH_IMAGE_KEEP_INTERVAL_MS ?? 30_000,
    keepRevisions: s.BERTH_IMAGE_KEEP_REVISIONS ?? 3,
  });
  const nodeEvents = new NodeEventsService(nodeRepo, replicaRepo, schedulerRepo, queues, routes, liveness, log.child({ part: 'node-events' }), undefined, (nodeId) =>
    imageKeep.nodeStarted(nodeId),
  );

  const metrics = deps.registry
    ? {
        reconciles: new Counter({ name: 'berth_scheduler_reconciles_total', help: 'Reconciles run', registers: [deps.registry] }),
        placements: new Counter({ name: 'berth_scheduler_placements_total', help: 'Replicas placed on nodes', registers: [deps.registry] }),
        conflicts: new Counter({ name: 'berth_scheduler_plan_conflicts_total', help: 'Plans re-computed after a stale read', registers: [deps.registry] }),
        duration: new Histogram({ name: 'berth_scheduler_reconcile_seconds', help: 'Reconcile duration', registers: [deps.registry] }),
      }
    : null;

  // Each worker gets a connection of its own: BullMQ may end a connection it was handed when it closes.
  const own: Redis[] = [];
  const dup = (): ConnectionOptions => {
    if (typeof (connection as Redis).duplicate !== 'function') return connection;
    const c = (connection as Redis).duplicate();
    own.push(c);
    return c;
  };
  const workerOpts = {
    prefix: s.BERTH_QUEUE_PREFIX,
    lockDuration: s.BERTH_JOB_LOCK_MS,
    stalledInterval: Math.max(1000, Math.floor(s.BERTH_JOB_LOCK_MS / 2)),
  };
  const reconcileWorker = new Worker<ReconcileJob>(
    QueueName.Reconcile,
    async (job) => {
      const end = metrics?.duration.startTimer();
      const out = await batcher.submit(job.data.serviceId, job.data.cause);
      end?.();
      metrics?.reconciles.inc();
      metrics?.conflicts.inc(out.conflicts);
      if (out.plan) metrics?.placements.inc(out.plan.create.filter((c) => c.nodeId).length + out.plan.place.length);
    },
    { ...workerOpts, connection: dup(), concurrency: s.BERTH_RECONCILE_CONCURRENCY },
  );
  const nodeEventsWorker = new Worker<NodeEventsJob>(QueueName.NodeEvents, (job) => nodeEvents.handle(job.data), {
    ...workerOpts,
    connection: dup(),
    concurrency: s.BERTH_NODE_EVENTS_CONCURRENCY,
  });
  for (const w of [reconcileWorker, nodeEventsWorker]) {
    w.on('failed', (job, err) => log.warn({ queue: w.name, jobId: job?.id, err: err.message }, 'job failed'));
    w.on('error', (err) => log.error({ queue: w.name, err: err.message }, 'worker error'));
  }

  const resync = async () => {
    const ids = new Set([...(await schedulerRepo.liveServiceIds()), ...(await nodeRepo.servicesWithPendingReplicas())]);
    await queues.enqueueReconcileMany(ids, 'resync');
    return ids.size;
  };
  let resyncTimer: NodeJS.Timeout | null = null;
  const loop = () => {
    resyncTimer = setTimeout(
      () =>
        void resync()
          .catch((e) => log.error({ err: e }, 'resync failed'))
          .finally(() => resyncTimer && loop()),
      s.BERTH_RESYNC_INTERVAL_MS,
    );
  };
  loop();
  // A fresh scheduler converges everything it can see right away.
  void resync().catch((e) => log.error({ err: e }, 'initial resync failed'));
  liveness.start();
  routes.start();
  imageKeep.start();

  return {
    reconcile,
    liveness,
    routes,
    queues,
    nodeEvents,
    resync,
    async close() {
      if (resyncTimer) clearTimeout(resyncTimer);
      resyncTimer = null;
      liveness.stop();
      imageKeep.stop();
      await Promise.all([reconcileWorker.close(), nodeEventsWorker.close()]);
      await nodeEvents.close();
      await routes.close();
      await queues.close();
      await commands.close();
      await schedulerRepo.close().catch(() => undefined);
      await Promise.all(own.map((c) => c.quit().catch(() => undefined)));
    },
  };
}
