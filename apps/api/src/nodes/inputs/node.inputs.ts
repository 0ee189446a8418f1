import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsBoolean, IsIn, IsInt, IsIP, IsObject, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength, ValidateNested } from 'class-validator';
import { IsStringMap } from '../../common/validation/validation';

export const NODE_NAME_RE = /^[a-z0-9]([a-z0-9.-]{0,61}[a-z0-9])?$/;
export const DEFAULT_JOIN_TOKEN_TTL_SECONDS = 24 * 3600;
export const MAX_JOIN_TOKEN_TTL_SECONDS = 365 * 24 * 3600;

export class CreateJoinTokenInput {
  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MaxLength(200)
  description?: string;

  @ApiPropertyOptional({ example: 'worker-1', description: 'bind the token to one node: only an agent registering this name may join with it' })
  @IsOptional()
  @IsString()
  @Matches(NODE_NAME_RE, { message: 'nodeName must be 1-63 lowercase letters, digits, "." or "-"' })
  nodeName?: string;

  @ApiPropertyOptional({ description: 'seconds until the token expires (default 86400 = 24 h, at most 365 days)', default: DEFAULT_JOIN_TOKEN_TTL_SECONDS })
  @IsOptional()
  @IsInt()
  @Min(60)
  @Max(MAX_JOIN_TOKEN_TTL_SECONDS)
  ttlSeconds?: number;

  @ApiPropertyOptional({ deprecated: true, description: 'hours until the token expires; use ttlSeconds' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(24 * 365)
  expiresInHours?: number;
}

export class CapacityInput {
  @ApiProperty()
  @IsInt()
  @Min(1)
  @Max(10_000_000)
  cpuMillis!: number;

  @ApiProperty()
  @IsInt()
  @Min(1)
  @Max(100_000_000)
  memoryMiB!: number;

  @ApiProperty()
  @IsInt()
  @Min(1)
  @Max(100_000_000)
  pids!: number;
}

export class RegisterNodeInput {
  @ApiProperty({ example: 'worker-1' })
  @IsString()
  @Matches(NODE_NAME_RE, { message: 'name must be 1-63 lowercase letters, digits, "." or "-"' })
  name!: string;

  @ApiProperty({ example: '10.0.0.5' })
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  @Matches(/^[A-Za-z0-9.:[\]-]+$/, { message: 'address must be a host name or IP address' })
  address!: string;

  @ApiPropertyOptional({ type: 'object', additionalProperties: { type: 'string' } })
  @IsOptional()
  @IsStringMap('label', { maxEntries: 64, maxValue: 253 })
  labels?: Record<string, string>;

  @ApiProperty({ type: CapacityInput })
  @IsObject()
  @ValidateNested()
  @Type(() => CapacityInput)
  capacity!: CapacityInput;

  @ApiProperty({ example: '0.1.0' })
  @IsString()
  @MinLength(1)
  @MaxLength(64)
  agentVersion!: string;

  @ApiPropertyOptional({ example: '192.168.1.5', description: "IPv4 address other nodes reach this node at for pod traffic and WireGuard (default: the node's address when it is IPv4)" })
  @IsOptional()
  @IsIP(4, { message: 'underlay must be an IPv4 address' })
  underlay?: string;

  @ApiPropertyOptional({ description: 'whether the node needs a pod subnet (false for hollow nodes: no container network)', default: true })
  @IsOptional()
  @IsBoolean()
  podNetwork?: boolean;

  @ApiPropertyOptional({ description: "the node's WireGuard public key (base64, 32 bytes), in wireguard network mode" })
  @IsOptional()
  @IsString()
  @Matches(/^[A-Za-z0-9+/]{42}[AEIMQUYcgkosw480]=$/, { message: 'wireguardPublicKey must be a WireGuard public key (44 base64 characters)' })
  wireguardPublicKey?: string;

  @ApiPropertyOptional({ description: 'false: the node joins the pod network but never gets replicas (edge or control-plane host)', default: true })
  @IsOptional()
  @IsBoolean()
  schedulable?: boolean;

  @ApiPropertyOptional({
    enum: ['issue', 'keep', 'none'],
    default: 'none',
    description:
      "the node's own Redis user: `issue` a new password (the agent has none stored), `keep` the one it has (the api re-creates the user from its hash), `none` (the agent uses a Redis URL of its own). A join with a join token always issues one unless `none`.",
  })
  @IsOptional()
  @IsIn(['issue', 'keep', 'none'], { message: 'redis must be one of issue, keep, none' })
  redis?: 'issue' | 'keep' | 'none';
}

export class PullCredentialsInput {
  @ApiProperty({ description: 'the replica being pulled for; it must be placed on the asking node' })
  @IsString()
  @Matches(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, { message: 'replicaId must be a uuid' })
  replicaId!: string;

  @ApiProperty({ example: 'registry.example:5000', description: "the registry host[:port] of the replica's image" })
  @IsString()
  @MinLength(1)
  @MaxLength(255)
  registry!: string;
}
