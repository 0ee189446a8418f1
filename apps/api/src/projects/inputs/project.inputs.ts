import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsEmail, IsIn, IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min, MinLength } from 'class-validator';

export const DNS_LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
export const DNS_LABEL_MESSAGE = (f: string) =>
  `${f} must be a DNS label: 1-63 lowercase letters, digits or "-", starting and ending with a letter or digit`;
export const ROLES = ['admin', 'deployer', 'viewer'] as const;
export type RoleInput = (typeof ROLES)[number];

export class CreateProjectInput {
  @ApiProperty({ example: 'shop', description: 'DNS label; part of service URLs' })
  @IsString()
  @Matches(DNS_LABEL, { message: DNS_LABEL_MESSAGE('slug') })
  slug!: string;

  @ApiPropertyOptional()
  @IsOptional()
  @IsString()
  @MinLength(1)
  @MaxLength(200)
  name?: string;
}

export class AddMemberInput {
  @ApiProperty()
  @IsEmail()
  @MaxLength(254)
  email!: string;

  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES)
  role!: RoleInput;

  @ApiPropertyOptional({ description: 'required when the user does not exist yet (creates the account)', minLength: 8 })
  @IsOptional()
  @IsString()
  @MinLength(8)
  @MaxLength(1024)
  password?: string;
}

export class CreateTokenInput {
  @ApiProperty({ example: 'ci-deploy' })
  @IsString()
  @MinLength(1)
  @MaxLength(100)
  @Matches(/^[\x20-\x7e]+$/, { message: 'name must be printable ASCII' })
  name!: string;

  @ApiProperty({ enum: ROLES })
  @IsIn(ROLES)
  role!: RoleInput;

  @ApiPropertyOptional({ description: 'expiry in days from now; never expires when omitted' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(3650)
  expiresInDays?: number;
}
