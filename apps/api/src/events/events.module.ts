import { Module } from '@nestjs/common';
import { ServicesModule } from '../services/services.module';
import { EventsController } from './events.controller';
import { EventsService } from './events.service';

/** The project's and a service's event log (written by the core module's AuditService). */
@Module({
  imports: [ServicesModule],
  controllers: [EventsController],
  providers: [EventsService],
})
export class EventsModule {}
