import { DynamicModule, Global, Module } from '@nestjs/common';
import { APP_INTERCEPTOR } from '@nestjs/core';
import { DbModule, EventRepository, IdempotencyRepository } from '@berth/db';
import { createMetricsRegistry, uptimeGauge } from '@berth/observability';
import Redis from 'ioredis';
import { API_CONFIG, ApiConfig } from '../config';
import { CLOCK, METRICS_REGISTRY, REDIS, SECRET_KEY } from '../tokens';
import { AuditService } from './audit/audit.service';
import { resolveSecretKey } from './crypto/secret-key';
import { IdempotencyJanitor } from './idempotency/idempotency-janitor';
import { IdempotencyInterceptor } from './idempotency/idempotency.interceptor';
import { ReconcileQueue } from './queue/reconcile.queue';
import { RedisLifecycle } from './redis-lifecycle';

export interface CoreModuleOptions {
  /** Overrides for tests: a fixed key or clock. */
  secretKey?: Buffer;
  clock?: () => Date;
}

/**
 * What every feature module shares: validated config, the secret key, the clock, Postgres (DbModule),
 * Redis, metrics, the reconcile queue and the audit trail. Global, so features inject these without
 * importing it. It also installs the Idempotency-Key interceptor and its janitor for the whole api.
 * Rate limiting and the error filter are HTTP middleware (configure-app.ts), not providers.
 */
@Global()
@Module({})
export class CoreModule {
  static forRoot(config: ApiConfig, opts: CoreModuleOptions = {}): DynamicModule {
    const secretKey =
      opts.secretKey ?? resolveSecretKey({ configured: config.BERTH_SECRET_KEY, nodeEnv: config.NODE_ENV, dataDir: config.BERTH_DATA_DIR }).key;
    return {
      module: CoreModule,
      imports: [DbModule.forRoot({ databaseUrl: config.DATABASE_URL })],
      providers: [
        { provide: API_CONFIG, useValue: config },
        { provide: SECRET_KEY, useValue: secretKey },
        { provide: CLOCK, useValue: opts.clock ?? (() => new Date()) },
        {
          provide: METRICS_REGISTRY,
          useFactory: () => {
            const r = createMetricsRegistry('api');
            uptimeGauge(r);
            return r;
          },
        },
        {
          provide: REDIS,
          useFactory: () => new Redis(config.REDIS_URL, { maxRetriesPerRequest: null, lazyConnect: false }),
        },
        RedisLifecycle,
        EventRepository,
        AuditService,
        ReconcileQueue,
        IdempotencyRepository,
        IdempotencyJanitor,
        { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
      ],
      exports: [API_CONFIG, SECRET_KEY, CLOCK, METRICS_REGISTRY, REDIS, EventRepository, AuditService, ReconcileQueue],
    };
  }
}
