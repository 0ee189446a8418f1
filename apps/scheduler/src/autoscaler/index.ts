import crypto from 'node:crypto';
import os from 'node:os';
import { QueueName, reconcileJobOptions, type JobPayload, type ReconcileJob } from '@berth/contracts';
import type { Logger, Registry } from '@berth/observability';
import { Queue, Worker } from 'bullmq';
import type Redis from 'ioredis';
import { AutoscalerLoopSettings, autoscalerSettingsFromEnv } from './autoscaler.config';
import { AutoscalerLoop, AutoscalerStore, EnqueueReconcile } from './autoscaler.loop';

export { AutoscalerLoop } from './autoscaler.loop';
export type { AutoscalerStore, EnqueueReconcile } from './autoscaler.loop';
export { autoscalerConfigSchema, autoscalerSettingsFromEnv } from './autoscaler.config';
export type { AutoscalerLoopSettings } from './autoscaler.config';

export interface AutoscalerDeps {
  /** `new AutoscalerRepository(prisma)` from libs/db/src/repositories/autoscaler.repository. */
  repository: AutoscalerStore;
  /** ioredis client with `maxRetriesPerRequest: null` (BullMQ requirement); also used to read samples. */
  connection: Redis;
  log: Logger;
  registry: Registry;
  clock?: () => number;
  /** Defaults to `autoscalerSettingsFromEnv()` (BERTH_AUTOSCALER_* variables). */
  settings?: AutoscalerLoopSettings;
  /**
   * How to trigger a reconcile; pass `(id, cause) => queues.enqueueReconcile(id, cause)` to share the
   * scheduler's producer. Default: an own producer on QueueName.Reconcile with the same dedup id.
   */
  enqueueReconcile?: EnqueueReconcile;
}

export interface RunningAutoscaler {
  loop: AutoscalerLoop;
  stop(): Promise<void>;
}

/**
 * Starts the autoscaler inside the scheduler process: a tick every BERTH_AUTOSCALER_TICK_MS and a BullMQ
 * worker on the `autoscale` queue consuming gateway wake-ups. Wiring in apps/scheduler/src/main.ts:
 *
 *   const autoscaler = await startAutoscaler({
 *     repository: new AutoscalerRepository(prisma), connection: redis, log, registry,
 *     enqueueReconcile: (id, cause) => queues.enqueueReconcile(id, cause),
 *   });
 *   onShutdown(log, [..., () => autoscaler.stop()]);
 */
export async function startAutoscaler(deps: AutoscalerDeps): Promise<RunningAutoscaler> {
  const settings = deps.settings ?? autoscalerSettingsFromEnv();
  const clock = deps.clock ?? Date.now;
  let ownQueue: Queue<ReconcileJob> | null = null;
  const enqueueReconcile: EnqueueReconcile =
    deps.enqueueReconcile ??
    (async (serviceId, cause) => {
      ownQueue ??= new Queue<ReconcileJob>(QueueName.Reconcile, { connection: deps.connection, prefix: settings.bullPrefix });
      await ownQueue.add(
        'reconcile',
        { kind: 'reconcile', serviceId, cause },
        reconcileJobOptions(serviceId),
      );
    });
  const loop = new AutoscalerLoop({
    store: deps.repository,
    redis: deps.connection,
    enqueueReconcile,
    settings,
    clock,
    log: deps.log.child({ component: 'autoscaler' }),
    registry: deps.registry,
    instanceId: `${os.hostname()}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`,
  });
  if (!settings.enabled) {
    deps.log.info('autoscaler disabled (BERTH_AUTOSCALER_ENABLED=false)');
    return { loop, stop: async () => undefined };
  }
  // A worker needs its own blocking connection.
  const workerConnection = deps.connection.duplicate();
  const worker = new Worker<JobPayload>(
    QueueName.Autoscale,
    async (job) => {
      if (job.data.kind === 'wake') return loop.wake(job.data);
      if (job.data.kind === 'autoscale-tick') return loop.tick();
      deps.log.warn({ kind: job.data.kind, id: job.id }, 'ignoring unexpected job on the autoscale queue');
    },
    { connection: workerConnection, prefix: settings.bullPrefix, concurrency: 4 },
  );
  worker.on('failed', (job, err) => deps.log.warn({ err, id: job?.id }, 'autoscale job failed'));
  const timer = setInterval(
    () => void loop.tick().catch((e) => deps.log.warn({ err: e }, 'autoscaler tick failed')),
    settings.tickMs,
  );
  deps.log.info({ tickMs: settings.tickMs, ...settings.decider }, 'autoscaler started');
  return {
    loop,
    stop: async () => {
      clearInterval(timer);
      await worker.close();
      await workerConnection.quit().catch(() => undefined);
      await ownQueue?.close();
      await loop.resign();
    },
  };
}
