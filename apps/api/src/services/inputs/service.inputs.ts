import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Transform, Type } from 'class-transformer';
import {
  ArrayMaxSize,
  IsArray,
  IsIn,
  IsInt,
  IsObject,
  IsOptional,
  IsString,
  Matches,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateIf,
  ValidateNested,
} from 'class-validator';
import { IsStringMap } from '../../common/validation/validation';
import { ProjectQuery } from '../../common/pagination/pagination';
import { DNS_LABEL, DNS_LABEL_MESSAGE } from '../../projects/inputs/project.inputs';

export class ResourcesInput {
  @ApiPropertyOptional({ default: 250, minimum: 10, maximum: 64000, description: 'CPU in millicores' })
  @IsOptional()
  @IsInt()
  @Min(10)
  @Max(64000)
  cpuMillis?: number;

  @ApiPropertyOptional({ default: 256, minimum: 16, maximum: 262144 })
  @IsOptional()
  @IsInt()
  @Min(16)
  @Max(262144)
  memoryMiB?: number;

  @ApiPropertyOptional({ default: 256, minimum: 8, maximum: 65536 })
  @IsOptional()
  @IsInt()
  @Min(8)
  @Max(65536)
  pids?: number;
}

export class RestartPolicyInput {
  @ApiProperty({ enum: ['no', 'always', 'on-failure'] })
  @IsIn(['no', 'always', 'on-failure'])
  policy!: 'no' | 'always' | 'on-failure';

  @ApiPropertyOptional({ default: 0, description: 'on-failure: restarts before FAILED (0 = unlimited)' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1000)
  maxRetries?: number;
}

export class HealthCheckInput {
  @ApiProperty({ enum: ['http', 'tcp'] })
  @IsIn(['http', 'tcp'])
  type!: 'http' | 'tcp';

  @ApiPropertyOptional({ example: '/healthz', description: 'http only; default /' })
  @IsOptional()
  @IsString()
  @MaxLength(1024)
  @Matches(/^\/[\x21-\x7e]*$/, { message: 'path must start with / and contain no spaces' })
  path?: string;

  @ApiPropertyOptional({ default: 5000 })
  @IsOptional()
  @IsInt()
  @Min(100)
  @Max(300000)
  intervalMs?: number;

  @ApiPropertyOptional({ default: 2000 })
  @IsOptional()
  @IsInt()
  @Min(50)
  @Max(60000)
  timeoutMs?: number;

  @ApiPropertyOptional({ default: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  successThreshold?: number;

  @ApiPropertyOptional({ default: 3 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100)
  failureThreshold?: number;
}

export class ScalingInput {
  @ApiPropertyOptional({ default: 1, minimum: 0, description: '0 allows scale to zero' })
  @IsOptional()
  @IsInt()
  @Min(0)
  @Max(1000)
  min?: number;

  @ApiPropertyOptional({ default: 1, minimum: 1 })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(1000)
  max?: number;

  @ApiPropertyOptional({ default: 100, description: 'in-flight requests per replica the autoscaler aims for' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(100000)
  targetConcurrency?: number;
}

const SURGE = /^(\d{1,3}%|\d{1,4})$/;
const toSurgeString = ({ value }: { value: unknown }) => (typeof value === 'number' ? String(value) : value);

export class RolloutInput {
  @ApiPropertyOptional({ default: '25%', description: 'replicas (or % of desired) started above desired during a rollout' })
  @IsOptional()
  @Transform(toSurgeString)
  @IsString()
  @Matches(SURGE, { message: 'maxSurge must be a count like 1 or a percentage like 25%' })
  maxSurge?: string;

  @ApiPropertyOptional({ default: '0', description: 'replicas (or %) allowed below desired during a rollout' })
  @IsOptional()
  @Transform(toSurgeString)
  @IsString()
  @Matches(SURGE, { message: 'maxUnavailable must be a count like 0 or a percentage like 25%' })
  maxUnavailable?: string;
}

/** Every field of a service's configuration except its name and image; shared by create and PATCH. */
export class ServiceConfigInput {
  @ApiPropertyOptional({ default: 8080, description: 'port the container listens on ($PORT is set to it)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(65535)
  port?: number;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, example: { LOG_LEVEL: 'info' } })
  @IsOptional()
  @IsStringMap('env')
  env?: Record<string, string>;

  @ApiPropertyOptional({ type: [String], nullable: true, description: 'overrides the image entrypoint + cmd; null restores the image default' })
  @IsOptional()
  @IsArray()
  @ArrayMaxSize(256)
  @IsString({ each: true })
  @MaxLength(32768, { each: true })
  command?: string[] | null;

  @ApiPropertyOptional({ type: ResourcesInput })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => ResourcesInput)
  resources?: ResourcesInput;

  @ApiPropertyOptional({ type: RestartPolicyInput })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => RestartPolicyInput)
  restartPolicy?: RestartPolicyInput;

  @ApiPropertyOptional({ type: HealthCheckInput, nullable: true, description: 'null disables health checking (ready once running); default tcp on port' })
  @ValidateIf((o: ServiceConfigInput) => o.healthCheck !== null && o.healthCheck !== undefined)
  @IsObject()
  @ValidateNested()
  @Type(() => HealthCheckInput)
  healthCheck?: HealthCheckInput | null;

  @ApiPropertyOptional({ type: ScalingInput })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => ScalingInput)
  scaling?: ScalingInput;

  @ApiPropertyOptional({ enum: ['spread', 'binpack'], default: 'spread' })
  @IsOptional()
  @IsIn(['spread', 'binpack'])
  placement?: 'spread' | 'binpack';

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' }, description: 'node label equality constraints' })
  @IsOptional()
  @IsStringMap('label', { maxEntries: 32, maxValue: 253 })
  constraints?: Record<string, string>;

  @ApiPropertyOptional({ type: RolloutInput })
  @IsOptional()
  @IsObject()
  @ValidateNested()
  @Type(() => RolloutInput)
  rollout?: RolloutInput;
}

export class CreateServiceInput extends ServiceConfigInput {
  @ApiProperty({ example: 'web', description: 'DNS label, unique in the project' })
  @IsString()
  @Matches(DNS_LABEL, { message: DNS_LABEL_MESSAGE('name') })
  name!: string;

  @ApiProperty({ example: '127.0.0.1:5000/berth-fixtures/web:v1' })
  @IsString()
  @MinLength(1)
  @MaxLength(512)
  image!: string;
}

export class PatchServiceInput extends ServiceConfigInput {}

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

  @ApiPropertyOptional({ description: 'return to the newest revision that ran this tag (its pinned digest): `v1` prefers the repository the service runs now; `web:v1` or a full reference names the repository' })
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(128)
  tag?: string;
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
}
