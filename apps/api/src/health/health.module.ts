import { Module } from '@nestjs/common';
import { HealthController } from './health.controller';

/** /healthz, /readyz, /metrics. */
@Module({ controllers: [HealthController] })
export class HealthModule {}
