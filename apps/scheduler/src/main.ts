import 'reflect-metadata';
import { loadConfigOrExit } from '@berth/config';
import { AutoscalerRepository, PrismaService } from '@berth/db';
import { createLogger, createMetricsRegistry, exitOnStartupError, onShutdown, redisCheck, startOpsServer } from '@berth/observability';
import Redis from 'ioredis';
import { startAutoscaler } from './autoscaler';
import { schedulerConfigSchema } from './config';
import { startScheduler } from './scheduler';

async function main() {
  const config = loadConfigOrExit(schedulerConfigSchema, 'scheduler');
  const log = createLogger('scheduler', config.LOG_LEVEL);
  const registry = createMetricsRegistry('scheduler');
  const prisma = new PrismaService({ databaseUrl: config.DATABASE_URL });
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const connection = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const scheduler = startScheduler({ prisma, databaseUrl: config.DATABASE_URL, redis, connection, settings: config, log, registry });
  const autoscaler = await startAutoscaler({
    repository: new AutoscalerRepository(prisma),
    connection,
    log: log.child({ part: 'autoscaler' }),
    registry,
    enqueueReconcile: (id, cause) => scheduler.queues.enqueueReconcile(id, cause),
  });
  const ops = await startOpsServer({
    app: 'scheduler',
    host: config.BERTH_SCHEDULER_OPS_HOST,
    port: config.BERTH_SCHEDULER_OPS_PORT,
    registry,
    checks: [{ name: 'postgres', check: () => prisma.ping() }, redisCheck(redis)],
  });
  log.info({ url: `http://${config.BERTH_SCHEDULER_OPS_HOST}:${ops.port}` }, 'scheduler ops listening');
  // onShutdown runs closers last-first: the workers stop before their connections go.
  onShutdown(log, [() => ops.close(), () => prisma.onModuleDestroy(), () => redis.quit(), () => connection.quit(), () => scheduler.close(), () => autoscaler.stop()]);
}

main().catch(exitOnStartupError('scheduler'));
