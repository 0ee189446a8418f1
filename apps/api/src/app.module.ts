import { DynamicModule, Module } from '@nestjs/common';
import { AuthModule } from './auth/auth.module';
import { CoreModule, CoreModuleOptions } from './common/core.module';
import { ApiConfig } from './config';
import { EventsModule } from './events/events.module';
import { HealthModule } from './health/health.module';
import { ImagesModule } from './images/images.module';
import { NodesModule } from './nodes/nodes.module';
import { ProjectsModule } from './projects/projects.module';
import { ServicesModule } from './services/services.module';

export type AppModuleOptions = CoreModuleOptions;

/**
 * The api: the shared core (config, clock, Postgres, Redis, queue, audit, idempotency) and one module
 * per feature, each declaring its controllers and providers and exporting only what others use.
 */
@Module({})
export class AppModule {
  static forRoot(config: ApiConfig, opts: AppModuleOptions = {}): DynamicModule {
    return {
      module: AppModule,
      imports: [CoreModule.forRoot(config, opts), HealthModule, AuthModule, ProjectsModule, ImagesModule, ServicesModule, NodesModule, EventsModule],
    };
  }
}
