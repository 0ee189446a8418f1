import { DynamicModule, Module } from '@nestjs/common';
import { APP_GUARD, APP_INTERCEPTOR } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import { PassportModule } from '@nestjs/passport';
import { DbModule } from '@berth/db';
import { createMetricsRegistry, uptimeGauge } from '@berth/observability';
import Redis from 'ioredis';
import { AuthController } from './auth/auth.controller';
import { AccessGuard } from './auth/guards/access.guard';
import { BearerOrJwtGuard } from './auth/guards/bearer-or-jwt.guard';
import { AuthService, JWT_SECRET } from './auth/auth.service';
import { TokenCache } from './auth/token-cache';
import { ApiTokenStrategy } from './auth/strategies/api-token.strategy';
import { JwtStrategy } from './auth/strategies/jwt.strategy';
import { AuditService } from './common/audit/audit.service';
import { deriveKey, resolveSecretKey } from './common/crypto/secret-key';
import { IdempotencyJanitor } from './common/idempotency/idempotency-janitor';
import { IdempotencyInterceptor } from './common/idempotency/idempotency.interceptor';
import { ReconcileQueue } from './common/queue/reconcile.queue';
import { RedisLifecycle } from './common/redis-lifecycle';
import { API_CONFIG, ApiConfig } from './config';
import {
  EventRepository,
  IdempotencyRepository,
  ImageRepository,
  NodeAdminRepository,
  ProjectRepository,
  RegistryCredentialRepository,
  RevisionRepository,
  ServiceRepository,
  TokenRepository,
  UserRepository,
} from './db';
import { EventsController } from './events/events.controller';
import { EventsService } from './events/events.service';
import { HealthController } from './health/health.controller';
import { ImagesController } from './images/images.controller';
import { ImagesService } from './images/images.service';
import { RegistryCredentialsService } from './images/registry-credentials.service';
import { NodesController } from './nodes/nodes.controller';
import { NodesService } from './nodes/nodes.service';
import { ProjectsController } from './projects/projects.controller';
import { ProjectsService } from './projects/projects.service';
import { ServicesController } from './services/services.controller';
import { LogsService } from './services/logs.service';
import { ServicesService } from './services/services.service';
import { CLOCK, METRICS_REGISTRY, REDIS, SECRET_KEY } from './tokens';

export interface AppModuleOptions {
  /** Overrides for tests: a fixed key or clock. */
  secretKey?: Buffer;
  clock?: () => Date;
}

const REPOSITORIES = [
  ProjectRepository,
  UserRepository,
  TokenRepository,
  RegistryCredentialRepository,
  ImageRepository,
  ServiceRepository,
  RevisionRepository,
  EventRepository,
  IdempotencyRepository,
  NodeAdminRepository,
];

@Module({})
export class AppModule {
  static forRoot(config: ApiConfig, opts: AppModuleOptions = {}): DynamicModule {
    const secretKey =
      opts.secretKey ?? resolveSecretKey({ configured: config.BERTH_SECRET_KEY, nodeEnv: config.NODE_ENV, dataDir: config.BERTH_DATA_DIR }).key;
    const jwtSecret = deriveKey(secretKey, 'jwt');
    return {
      module: AppModule,
      imports: [
        DbModule.forRoot({ databaseUrl: config.DATABASE_URL }),
        PassportModule,
        JwtModule.register({ secret: jwtSecret, signOptions: { algorithm: 'HS256' } }),
      ],
      controllers: [
        HealthController,
        AuthController,
        ProjectsController,
        ImagesController,
        ServicesController,
        EventsController,
        NodesController,
      ],
      providers: [
        { provide: API_CONFIG, useValue: config },
        { provide: SECRET_KEY, useValue: secretKey },
        { provide: JWT_SECRET, useValue: jwtSecret },
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
        ...REPOSITORIES,
        RedisLifecycle,
        IdempotencyJanitor,
        AuditService,
        ReconcileQueue,
        AuthService,
        TokenCache,
        ApiTokenStrategy,
        JwtStrategy,
        BearerOrJwtGuard,
        ProjectsService,
        RegistryCredentialsService,
        ImagesService,
        ServicesService,
        LogsService,
        EventsService,
        NodesService,
        { provide: APP_GUARD, useClass: AccessGuard },
        { provide: APP_INTERCEPTOR, useClass: IdempotencyInterceptor },
      ],
    };
  }
}
