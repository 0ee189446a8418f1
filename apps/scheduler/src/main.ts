import 'reflect-metadata';
import { loadConfigOrExit } from '@berth/config';
import { PrismaService } from '@berth/db';
import { createLogger, createMetricsRegistry, exitOnStartupError, onShutdown, redisCheck, startOpsServer } from '@berth/observability';
import Redis from 'ioredis';
import { schedulerConfigSchema } from './config';
import { startScheduler } from './scheduler';

async function main() {
  const config = loadConfigOrExit(schedulerConfigSchema, 'scheduler');
  const log = createLogger('scheduler', config.LOG_LEVEL);
  const registry = createMetricsRegistry('scheduler');
  const prisma = new PrismaService({ databaseUrl: config.DATABASE_URL });
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const connection = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  // A Nest application context: SchedulerCore (reconcile, liveness, routes, autoscaler) and the
  // @nestjs/bullmq processors of the scheduler's queues, checked against the queue registry.
  const scheduler = await startScheduler({ prisma, databaseUrl: config.DATABASE_URL, redis, connection, settings: config, log, registry });
  const ops = await startOpsServer({
    app: 'scheduler',
    host: config.BERTH_SCHEDULER_OPS_HOST,
    port: config.BERTH_SCHEDULER_OPS_PORT,
    registry,
    checks: [{ name: 'postgres', check: () => prisma.ping() }, redisCheck(redis)],
  });
  log.info({ url: `http://${config.BERTH_SCHEDULER_OPS_HOST}:${ops.port}` }, 'scheduler ops listening');
  // onShutdown runs closers last-first: the application (workers drained first) before its connections.
  onShutdown(log, [() => ops.close(), () => prisma.onModuleDestroy(), () => redis.quit(), () => connection.quit(), () => scheduler.close()]);
}

main().catch(exitOnStartupError('scheduler'));
