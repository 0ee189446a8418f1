import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength, ValidateIf } from 'class-validator';
import { ProjectQuery } from '../../common/pagination/pagination';

/*
 * A service's configuration (create and PATCH bodies) is validated by its contract schemas in
 * `@berth/contracts` (CreateServiceInputSchema, ServiceConfigInputSchema); the classes below are
 * the other service endpoints' inputs.
 */

export class DeployInput {
  @ApiPropertyOptional({ example: '127.0.0.1:5000/berth-fixtures/web:v2', description: 'full reference; or give only tag' })
  @ValidateIf((o: DeployInput) => o.tag === undefined || o.image !== undefined)
  @IsString()
  @MinLength(1)
  @MaxLength(512)
  image?: string;

  @ApiPropertyOptional({ example: 'v2', description: 'a tag of the repository the service runs now' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(128)
  tag?: string;
}

export class RollbackInput {
  @ApiPropertyOptional({ description: 'revision number to return to' })
  @IsOptional()
  @IsInt()
  @Min(1)
  revision?: number;

  @ApiPropertyOptional({
    description:
      'return to the newest revision that ran this tag (its pinned digest), preferring one that reached ACTIVE: `v1` prefers the repository the service runs now; `web:v1` or a full reference names the repository',
  })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(128)
  tag?: string;

  @ApiPropertyOptional({
    default: false,
    description:
      'roll back to a revision that never reached ACTIVE (e.g. a FAILED deploy); without it such a target is refused with 409 naming why it failed',
  })
  @IsOptional()
  @IsBoolean()
  force?: boolean;
}

/**
 * Scaling bounds next to the autoscaler (see resolveScale in libs/scheduling): `replicas` alone sets the
 * minimum (a floor, like Cloud Run's minimum instances); `min`/`max` set the bounds (like Knative's
 * min-scale/max-scale); a field left out keeps its value.
 */
export class ScaleInput {
  @ApiPropertyOptional({ minimum: 0, description: 'fewest replicas the autoscaler keeps (0 = scale to zero when idle); default: unchanged, or `replicas` when only that is given' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1000)
  min?: number;

  @ApiPropertyOptional({ minimum: 1, description: 'most replicas the autoscaler starts; default: unchanged (raised to min if below)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1000)
  max?: number;

  @ApiPropertyOptional()
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100000)
  targetConcurrency?: number;

  @ApiPropertyOptional({
    description:
      'replicas now. Without `min` it is also the new minimum, so the autoscaler never goes below it; with `min` it is the count now within [min, max], which the autoscaler may lower to min when idle',
  })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1000)
  replicas?: number;
}

export class DiffQuery extends ProjectQuery {
  @ApiProperty()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  from!: number;

  @ApiProperty()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  to!: number;
}

export class LogsQuery extends ProjectQuery {
  @ApiPropertyOptional({ description: '1 keeps the stream open and sends new lines as they arrive' })
  @IsOptional()
  @IsIn(['0', '1', 'true', 'false'])
  follow?: string;

  @ApiPropertyOptional({ default: 100, maximum: 10000 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(0)
  @Max(10000)
  tail?: number;

  @ApiPropertyOptional({ description: 'only this replica' })
  @IsOptional()
  @IsString()
  @Matches(/^[0-9a-f-]{36}$/, { message: 'replica must be a replica id' })
  replica?: string;

  @ApiPropertyOptional({
    description: 'only lines written at or after this: a duration back from now (`90s`, `10m`, `1h`, `2d`) or an RFC 3339 time; `tail` still caps how many',
    example: '10m',
  })
  @IsOptional()
  @IsString()
  @MaxLength(64)
  since?: string;
}

export class MetricsQuery extends ProjectQuery {
  @ApiPropertyOptional({ default: 180, minimum: 1, maximum: 360, description: 'how many minutes back (one point per minute; history is kept 6 h)' })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(360)
  minutes?: number;
}
