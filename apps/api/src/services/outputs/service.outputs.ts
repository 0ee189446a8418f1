import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

/** OpenAPI shapes of what the services endpoints answer (documentation only; the service builds the objects). */

export class ReplicaCountsOut {
  @ApiProperty({ description: 'replicas the service should have now (set by scale, the autoscaler or a wake-up)' })
  desired!: number;

  @ApiProperty({ description: 'replicas READY (serving traffic)' })
  ready!: number;

  @ApiProperty({
    description: 'count per replica state (PENDING … READY, STOPPED, FAILED …); states with no replica are left out',
    type: 'object',
    additionalProperties: { type: 'integer' },
    example: { READY: 2, STARTING: 1, STOPPED: 4 },
  })
  byState!: Record<string, number>;
}

export class ScalingOut {
  @ApiProperty({ description: 'fewest replicas the autoscaler keeps (0 = scales to zero when idle)' })
  min!: number;

  @ApiProperty({ description: 'most replicas the autoscaler starts' })
  max!: number;

  @ApiProperty({ description: 'in-flight requests per replica the autoscaler aims for' })
  targetConcurrency!: number;

  @ApiProperty({
    description: 'what the autoscaler does with these bounds, in one sentence',
    example: 'min 3, max 10: the autoscaler keeps between 3 and 10 replicas with load (3 now)',
  })
  summary!: string;

  @ApiPropertyOptional({ description: 'scale answers only: `replicas` was given without `min`, so it set the minimum' })
  floorFromReplicas?: boolean;
}

export class RevisionSummaryOut {
  @ApiProperty() number!: number;
  @ApiProperty({ description: 'image reference as given (tag)' }) image!: string;
  @ApiProperty({ nullable: true, type: String }) tag!: string | null;
  @ApiProperty({ description: 'pinned digest' }) digest!: string;
  @ApiProperty({ enum: ['PENDING', 'ROLLING_OUT', 'ACTIVE', 'SUPERSEDED', 'FAILED'] }) status!: string;
  @ApiProperty({ enum: ['CREATE', 'DEPLOY', 'CONFIG', 'ROLLBACK'] }) reason!: string;
  @ApiProperty() createdAt!: Date;
}

export class ServiceSummaryOut {
  @ApiProperty() id!: string;
  @ApiProperty() name!: string;
  @ApiProperty({ description: 'project slug' }) project!: string;
  @ApiProperty({ description: 'URL through the gateway' }) url!: string;
  @ApiProperty() generation!: number;
  @ApiProperty({ description: 'same as replicas.desired (kept for older clients)' }) desiredReplicas!: number;
  @ApiProperty({ type: ScalingOut }) scaling!: ScalingOut;
  @ApiProperty({ type: ReplicaCountsOut }) replicas!: ReplicaCountsOut;
  @ApiProperty({ type: RevisionSummaryOut, nullable: true }) activeRevision!: RevisionSummaryOut | null;
  @ApiProperty() createdAt!: Date;
  @ApiProperty() updatedAt!: Date;
}

export class ServicePageOut {
  @ApiProperty({ type: [ServiceSummaryOut] }) items!: ServiceSummaryOut[];
  @ApiProperty({ nullable: true, type: String, description: 'pass as `cursor` for the next page; null on the last page' }) nextCursor!: string | null;
}

export class ServiceDetailOut extends ServiceSummaryOut {
  @ApiProperty({ description: 'the service configuration (port, env, resources, scaling, health check …)', type: 'object', additionalProperties: true })
  spec!: Record<string, unknown>;
}
