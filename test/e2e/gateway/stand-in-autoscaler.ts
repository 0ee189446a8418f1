import { AutoscalerRepository, PrismaService } from '@berth/db';
import { createLogger, createMetricsRegistry } from '@berth/observability';
import Redis from 'ioredis';
import { QueueName, reconcileJobOptions, type ReconcileJob, type WakeJob } from '@berth/contracts';
import { Queue, Worker } from 'bullmq';
import { createAutoscaler } from '../../../apps/scheduler/src/autoscaler';
import type { AutoscalerLoopSettings } from '../../../apps/scheduler/src/autoscaler';
import type { RunningSystem } from '../../support/system';

/**
 * The scheduler runs the autoscaler (createAutoscaler() in SchedulerCore). Should it not (its /metrics lack
 * berth_autoscaler_*), this runs the same autoscaler in the calling process against the system's
 * Postgres and Redis — what a second scheduler instance would run — so gateway e2e tests and the
 * cold-start bench exercise wake-ups and scaling. Returns null when the scheduler already runs it.
 */
export async function standInAutoscalerIfMissing(
  sys: RunningSystem,
  decider: AutoscalerLoopSettings['decider'],
  tickMs = 250,
): Promise<{ stop(): Promise<void> } | null> {
  const metrics = await (await fetch(`${sys.opsUrls.scheduler}/metrics`)).text();
  if (metrics.includes('berth_autoscaler_decisions_total')) return null;
  process.stderr.write('gateway e2e: the scheduler does not run the autoscaler; running it in this process\n');
  const prisma = new PrismaService({ databaseUrl: sys.databaseUrl, poolSize: 2 });
  const connection = new Redis(sys.redisUrl, { maxRetriesPerRequest: null });
  const reconcile = new Queue<ReconcileJob>(QueueName.Reconcile, { connection, prefix: 'bull' });
  const autoscaler = createAutoscaler({
    repository: new AutoscalerRepository(prisma),
    redis: connection,
    log: createLogger('e2e-autoscaler', 'warn'),
    registry: createMetricsRegistry('e2e-autoscaler'),
    settings: { enabled: true, tickMs, sampleMaxAgeMs: 3000, keyPrefix: '', decider },
    enqueueReconcile: async (id, cause) => void (await reconcile.add('reconcile', { kind: 'reconcile', serviceId: id, cause }, reconcileJobOptions(id))),
  });
  autoscaler.start();
  const waker = new Worker<WakeJob>(QueueName.Autoscale, (job) => autoscaler.loop.wake(job.data), { connection, prefix: 'bull' });
  return {
    stop: async () => {
      await waker.close();
      await autoscaler.stop();
      await reconcile.close();
      await connection.quit();
      await prisma.onModuleDestroy();
    },
  };
}
