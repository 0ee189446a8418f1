import { Inject, Injectable, Module, type BeforeApplicationShutdown, type DynamicModule, type INestApplicationContext, type OnApplicationBootstrap } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WorkerHost } from '@nestjs/bullmq';
import type { Job } from 'bullmq';
import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { Counter, Histogram, Registry } from 'prom-client';
import { QueueName, type NodeEventsJob, type QueueHandlers, type ReconcileJob, type WakeJob } from '@berth/contracts';
import { AutoscalerRepository, createReconcilePool, NodeRepository, ReplicaRepository, SchedulerRepository, type PrismaService } from '@berth/db';
import { nestLogger, QueueConsumersModule, queueProcessor } from '@berth/queues';
import { autoscalerSettings, createAutoscaler, type AutoscalerConfig, type RunningAutoscaler } from './autoscaler';
import type { SchedulerConfig } from './config';
import { ImageKeepPublisher } from './node-events/image-keep.publisher';
import { LivenessMonitor } from './node-events/liveness.monitor';
import { NetworkSyncPublisher } from './network/network-sync.publisher';
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
  Partial<Pick<SchedulerConfig, 'BERTH_PLACEMENT_SAMPLE' | 'BERTH_RECONCILE_BATCH' | 'BERTH_IMAGE_KEEP_REVISIONS' | 'BERTH_IMAGE_KEEP_INTERVAL_MS'>> &
  /** The pod network (defaults as in config.ts when absent, for in-process tests). */
  Partial<
    Pick<
      SchedulerConfig,
      | 'BERTH_NETWORK_MODE'
      | 'BERTH_CLUSTER_CIDR'
      | 'BERTH_WIREGUARD_PORT'
      | 'BERTH_NETWORK_PROTECTED_CIDRS'
      | 'BERTH_NETWORK_SYNC_DEBOUNCE_MS'
      | 'BERTH_NETWORK_RESYNC_INTERVAL_MS'
    >
  > &
  /** Without them (in-process tests) the autoscaler is off: wake-ups are consumed and dropped. */
  Partial<AutoscalerConfig>;

export interface SchedulerDeps {
  prisma: PrismaService;
  /** Postgres for the reconcile's reads/writes (a small pg pool of its own, next to Prisma's). */
  databaseUrl: string;
  /** Hooks on the reconcile's phases (bench/schedule); none in production. */
  reconcileObserver?: ReconcileObserver;
  /** Routing table, autoscaler samples and lease. */
  redis: Redis;
  /** BullMQ: producers and the processors' workers (each worker duplicates it for its blocking reads). */
  connection: Redis;
  settings: SchedulerSettings;
  log: Logger;
  registry?: Registry;
}

export interface RunningScheduler {
  reconcile: ReconcileService;
  liveness: LivenessMonitor;
  routes: RoutePublisher;
  queues: SchedulerQueues;
  nodeEvents: NodeEventsService;
  autoscaler: RunningAutoscaler;
  network: NetworkSyncPublisher;
  app: INestApplicationContext;
  resync(): Promise<number>;
  close(): Promise<void>;
}

const DEPS = Symbol('SchedulerDeps');

/**
 * Everything the scheduler's queue consumers use, and its loops: the liveness monitor, the periodic
 * resync, the routing-table publisher, the image keep-sets and the autoscaler's tick. Started once
 * the application is wired; closed after the workers have drained (`beforeApplicationShutdown` runs
 * after QueueConsumers' `onModuleDestroy`).
 */
@Injectable()
export class SchedulerCore implements OnApplicationBootstrap, BeforeApplicationShutdown {
  readonly queues: SchedulerQueues;
  readonly routes: RoutePublisher;
  readonly reconcile: ReconcileService;
  readonly liveness: LivenessMonitor;
  readonly nodeEvents: NodeEventsService;
  readonly autoscaler: RunningAutoscaler;
  readonly network: NetworkSyncPublisher;
  private readonly batcher: ReconcileBatcher;
  private readonly commands: NodeCommandBatch;
  private readonly imageKeep: ImageKeepPublisher;
  private readonly schedulerRepo: SchedulerRepository;
  private readonly nodeRepo: NodeRepository;
  private readonly metrics;
  private resyncTimer: NodeJS.Timeout | null = null;

  constructor(@Inject(DEPS) private readonly deps: SchedulerDeps) {
    const { prisma, redis, connection, settings: s, log } = deps;
    const reconcilePool = createReconcilePool(deps.databaseUrl);
    reconcilePool.on('error', (err) => log.warn({ err: err.message }, 'idle reconcile pool connection failed'));
    const schedulerRepo = (this.schedulerRepo = new SchedulerRepository(prisma, reconcilePool));
    const nodeRepo = (this.nodeRepo = new NodeRepository(prisma));
    const replicaRepo = new ReplicaRepository(prisma);
    const queues = (this.queues = new SchedulerQueues(connection, s.BERTH_QUEUE_PREFIX));
    const routes = (this.routes = new RoutePublisher(schedulerRepo, redis, log.child({ part: 'routes' }), s.BERTH_ROUTES_FLUSH_MS));
    const commands = (this.commands = new NodeCommandBatch(connection, s.BERTH_QUEUE_PREFIX));
    const snapshot = new NodeSnapshotCache(schedulerRepo, s.BERTH_NODE_SNAPSHOT_TTL_MS);
    const reconcile = (this.reconcile = new ReconcileService(schedulerRepo, snapshot, queues, routes, log.child({ part: 'reconcile' }), {
      rolloutDeadlineMs: s.BERTH_ROLLOUT_DEADLINE_MS,
      minReadyMs: s.BERTH_MIN_READY_MS,
      commandResendAfterMs: s.BERTH_COMMAND_RESEND_AFTER_MS,
      stopGraceMs: s.BERTH_STOP_GRACE_MS,
      placementSample: s.BERTH_PLACEMENT_SAMPLE ?? 64,
      commands,
      observer: deps.reconcileObserver,
    }));
    this.batcher = new ReconcileBatcher(
      (items) => reconcile.reconcileBatch(items),
      (id, cause) => reconcile.reconcile(id, cause),
      s.BERTH_RECONCILE_BATCH ?? 16,
    );
    const network = (this.network = new NetworkSyncPublisher(schedulerRepo, queues, log.child({ part: 'network' }), {
      mode: s.BERTH_NETWORK_MODE ?? 'host-gw',
      clusterCidr: s.BERTH_CLUSTER_CIDR ?? '10.88.0.0/16',
      wireguardPort: s.BERTH_WIREGUARD_PORT ?? 51820,
      protectedCidrs: s.BERTH_NETWORK_PROTECTED_CIDRS ?? [],
      debounceMs: s.BERTH_NETWORK_SYNC_DEBOUNCE_MS ?? 200,
      resyncIntervalMs: s.BERTH_NETWORK_RESYNC_INTERVAL_MS ?? 30_000,
    }));
    const liveness = (this.liveness = new LivenessMonitor(nodeRepo, schedulerRepo, queues, log.child({ part: 'liveness' }), {
      heartbeatIntervalMs: s.BERTH_HEARTBEAT_INTERVAL_MS,
      missedBeats: s.BERTH_NODE_DOWN_AFTER_MISSED,
      checkIntervalMs: s.BERTH_LIVENESS_CHECK_INTERVAL_MS,
      // A node went DOWN (its peers withdraw their routes to it) or came back (its queue was emptied: it needs its state).
      onNodesDown: () => network.trigger(),
      onNodeBack: (nodeId) => network.nodeStarted(nodeId),
    }));
    const imageKeep = (this.imageKeep = new ImageKeepPublisher(schedulerRepo, queues, log.child({ part: 'image-keep' }), {
      intervalMs: s.BERTH_IMAGE_KEEP_INTERVAL_MS ?? 30_000,
      keepRevisions: s.BERTH_IMAGE_KEEP_REVISIONS ?? 3,
    }));
    this.nodeEvents = new NodeEventsService(
      nodeRepo,
      replicaRepo,
      schedulerRepo,
      queues,
      routes,
      liveness,
      log.child({ part: 'node-events' }),
      undefined,
      (nodeId) => {
        imageKeep.nodeStarted(nodeId);
        // A (re)started agent has registered: it is a peer now (or again), and gets its state.
        network.nodeStarted(nodeId);
      },
      // A replica got or lost an address: the project address sets change.
      () => network.trigger('replicas'),
    );
    const registry = deps.registry;
    this.metrics = registry
      ? {
          reconciles: new Counter({ name: 'berth_scheduler_reconciles_total', help: 'Reconciles run', registers: [registry] }),
          placements: new Counter({ name: 'berth_scheduler_placements_total', help: 'Replicas placed on nodes', registers: [registry] }),
          conflicts: new Counter({ name: 'berth_scheduler_plan_conflicts_total', help: 'Plans re-computed after a stale read', registers: [registry] }),
          duration: new Histogram({ name: 'berth_scheduler_reconcile_seconds', help: 'Reconcile duration', registers: [registry] }),
        }
      : null;
    this.autoscaler = createAutoscaler({
      repository: new AutoscalerRepository(prisma),
      redis,
      log: log.child({ part: 'autoscaler' }),
      registry: registry ?? new Registry(),
      settings: autoscalerSettings({
        BERTH_AUTOSCALER_ENABLED: false,
        BERTH_AUTOSCALER_TICK_MS: 1000,
        BERTH_AUTOSCALER_STABLE_WINDOW_MS: 60_000,
        BERTH_AUTOSCALER_PANIC_WINDOW_MS: 6_000,
        BERTH_AUTOSCALER_PANIC_THRESHOLD: 2,
        BERTH_AUTOSCALER_MAX_SCALE_DOWN_RATE: 2,
        BERTH_AUTOSCALER_MAX_SCALE_UP_RATE: 1000,
        BERTH_AUTOSCALER_SCALE_TO_ZERO_GRACE_MS: 30_000,
        BERTH_AUTOSCALER_SAMPLE_MAX_AGE_MS: 3_000,
        BERTH_REDIS_KEY_PREFIX: '',
        ...definedOnly(s),
      }),
      enqueueReconcile: (id, cause) => queues.enqueueReconcile(id, cause),
    });
  }

  /** One `reconcile` job: through the batcher (services reconciled together under load). */
  async runReconcile(job: ReconcileJob): Promise<void> {
    const end = this.metrics?.duration.startTimer();
    const out = await this.batcher.submit(job.serviceId, job.cause);
    end?.();
    this.metrics?.reconciles.inc();
    this.metrics?.conflicts.inc(out.conflicts);
    if (out.plan) this.metrics?.placements.inc(out.plan.create.filter((c) => c.nodeId).length + out.plan.place.length);
  }

  /** Every live service (and any with pending replicas) gets a reconcile. */
  async resync(): Promise<number> {
    const ids = new Set([...(await this.schedulerRepo.liveServiceIds()), ...(await this.nodeRepo.servicesWithPendingReplicas())]);
    await this.queues.enqueueReconcileMany(ids, 'resync');
    return ids.size;
  }

  onApplicationBootstrap(): void {
    const { settings: s, log } = this.deps;
    const loop = () => {
      this.resyncTimer = setTimeout(
        () =>
          void this.resync()
            .catch((e) => log.error({ err: e }, 'resync failed'))
            .finally(() => this.resyncTimer && loop()),
        s.BERTH_RESYNC_INTERVAL_MS,
      );
    };
    loop();
    // A fresh scheduler converges everything it can see right away.
    void this.resync().catch((e) => log.error({ err: e }, 'initial resync failed'));
    this.liveness.start();
    this.routes.start();
    this.imageKeep.start();
    this.network.start();
    this.autoscaler.start();
  }

  async beforeApplicationShutdown(): Promise<void> {
    if (this.resyncTimer) clearTimeout(this.resyncTimer);
    this.resyncTimer = null;
    this.liveness.stop();
    this.imageKeep.stop();
    this.network.stop();
    await this.autoscaler.stop();
    await this.nodeEvents.close();
    await this.routes.close();
    await this.queues.close();
    await this.commands.close();
    await this.schedulerRepo.close().catch(() => undefined);
  }
}

const definedOnly = <T extends object>(o: T): Partial<T> => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;

// ---------------------------------------------------------------- queue consumers

/** `reconcile`: level-triggered reconcile of one service (batched with others under load). */
@Injectable()
export class ReconcileProcessor extends WorkerHost {
  constructor(private readonly core: SchedulerCore) {
    super();
  }
  process(job: Job<ReconcileJob>): Promise<void> {
    return this.core.runReconcile(job.data);
  }
}

/** `node-events`: agents' replica reports, heartbeats and node events. */
@Injectable()
export class NodeEventsProcessor extends WorkerHost {
  constructor(private readonly core: SchedulerCore) {
    super();
  }
  process(job: Job<NodeEventsJob>): Promise<void> {
    return this.core.nodeEvents.handle(job.data);
  }
}

/** `autoscale`: gateway wake-ups of services scaled to zero (dropped while the autoscaler is off). */
@Injectable()
export class AutoscaleProcessor extends WorkerHost {
  constructor(private readonly core: SchedulerCore) {
    super();
  }
  async process(job: Job<WakeJob>): Promise<boolean> {
    if (!this.core.autoscaler.enabled) return false;
    return this.core.autoscaler.loop.wake(job.data);
  }
}

/** The scheduler's consumer of each of its queues (libs/contracts QUEUES); the compiler checks the set. */
export const schedulerProcessors = {
  [QueueName.Reconcile]: ReconcileProcessor,
  [QueueName.NodeEvents]: NodeEventsProcessor,
  [QueueName.Autoscale]: AutoscaleProcessor,
} satisfies QueueHandlers<'scheduler'>;

@Module({})
export class SchedulerModule {
  static forRoot(deps: SchedulerDeps): DynamicModule {
    const s = deps.settings;
    const worker = {
      lockDuration: s.BERTH_JOB_LOCK_MS,
      stalledInterval: Math.max(1000, Math.floor(s.BERTH_JOB_LOCK_MS / 2)),
    };
    const concurrency: Record<keyof typeof schedulerProcessors, number> = {
      [QueueName.Reconcile]: s.BERTH_RECONCILE_CONCURRENCY,
      [QueueName.NodeEvents]: s.BERTH_NODE_EVENTS_CONCURRENCY,
      [QueueName.Autoscale]: 4,
    };
    return {
      module: SchedulerModule,
      imports: [QueueConsumersModule.forRoot({ app: 'scheduler', connection: deps.connection, prefix: s.BERTH_QUEUE_PREFIX, log: deps.log })],
      providers: [
        { provide: DEPS, useValue: deps },
        SchedulerCore,
        ...Object.entries(schedulerProcessors).map(([queue, cls]) =>
          queueProcessor(cls, queue, { ...worker, concurrency: concurrency[queue as keyof typeof concurrency] }),
        ),
      ],
    };
  }
}

/**
 * The scheduler as a Nest application context: SchedulerCore and the `@nestjs/bullmq` processors of
 * its queues, checked against the queue registry before they consume. Used by main.ts and, in-process,
 * by integration tests and benches. `close()` drains the workers, then closes the rest.
 */
export async function startScheduler(deps: SchedulerDeps): Promise<RunningScheduler> {
  const app = await NestFactory.createApplicationContext(SchedulerModule.forRoot(deps), { logger: nestLogger(deps.log), abortOnError: false });
  const core = app.get(SchedulerCore);
  return {
    reconcile: core.reconcile,
    liveness: core.liveness,
    routes: core.routes,
    queues: core.queues,
    nodeEvents: core.nodeEvents,
    autoscaler: core.autoscaler,
    network: core.network,
    app,
    resync: () => core.resync(),
    close: () => app.close(),
  };
}
