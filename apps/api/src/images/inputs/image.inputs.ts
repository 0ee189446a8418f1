import { ApiProperty } from '@nestjs/swagger';
import { IsString, MaxLength, MinLength } from 'class-validator';
import { PageQuery } from '../../common/pagination/pagination';

export class ResolveImageInput {
  @ApiProperty({ example: '127.0.0.1:5000/berth-fixtures/web:v1' })
  @IsString()
  @MinLength(1)
  @MaxLength(512)
  reference!: string;
}

export class PutRegistryCredentialInput {
  @ApiProperty()
  @IsString()
  @MinLength(1)
  @MaxLength(256)
  username!: string;

  @ApiProperty({ description: 'password or access token; stored encrypted, never returned' })
  @IsString()
  @MinLength(1)
  @MaxLength(8192)
  password!: string;
}

export class TagPageQuery extends PageQuery {}
