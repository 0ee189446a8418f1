import { Module } from '@nestjs/common';
import { RevisionRepository, ServiceRepository } from '@berth/db';
import { ImagesModule } from '../images/images.module';
import { LogsService } from './logs.service';
import { MetricsService } from './metrics.service';
import { ServicesController } from './services.controller';
import { ServicesService } from './services.service';

/** Services, their revisions, deploys, scaling, rollback, replicas, logs and traffic history. */
@Module({
  imports: [ImagesModule],
  controllers: [ServicesController],
  providers: [ServiceRepository, RevisionRepository, ServicesService, LogsService, MetricsService],
  // The events module resolves a service name to its id.
  exports: [ServicesService],
})
export class ServicesModule {}
