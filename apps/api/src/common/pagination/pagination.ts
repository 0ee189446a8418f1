import { ApiPropertyOptional } from '@nestjs/swagger';
import { Type } from 'class-transformer';
import { IsInt, IsOptional, IsString, Matches, Max, MaxLength, Min } from 'class-validator';
import { DomainError, ErrorCode } from '@berth/contracts';

/** `?project=` selects the project for user (JWT) callers; every query DTO accepts it. */
export class ProjectQuery {
  @ApiPropertyOptional({ description: 'project slug (alternative to the X-Berth-Project header)' })
  @IsOptional()
  @IsString()
  @MaxLength(63)
  project?: string;
}

export class PageQuery extends ProjectQuery {
  @ApiPropertyOptional({ minimum: 1, maximum: 200, default: 50 })
  @IsOptional()
  @Type(() => Number)
  @IsInt()
  @Min(1)
  @Max(200)
  limit?: number;

  @ApiPropertyOptional({ description: 'nextCursor of the previous page' })
  @IsOptional()
  @IsString()
  @MaxLength(200)
  @Matches(/^[A-Za-z0-9_-]+$/, { message: 'cursor must be a nextCursor value returned by the previous page' })
  cursor?: string;
}

export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export const encodeCursor = (key: string): string => Buffer.from(key, 'utf8').toString('base64url');

/** Decodes a cursor and checks it has the shape the list expects, so a forged one is a 400, not a 500. */
export function decodeCursor(cursor: string | undefined, kind: 'uuid' | 'int' | 'text' = 'uuid'): string | undefined {
  if (cursor === undefined) return undefined;
  const key = Buffer.from(cursor, 'base64url').toString('utf8');
  const ok = kind === 'uuid' ? UUID.test(key) : kind === 'int' ? /^\d{1,19}$/.test(key) : key.length > 0 && key.length <= 256;
  if (!ok) throw new DomainError(ErrorCode.Validation, 'cursor is invalid: pass the nextCursor of the previous page', { field: 'cursor' });
  return key;
}

export const DEFAULT_LIMIT = 50;

export interface PageRequest {
  limit: number;
  after?: string;
}

export function pageRequest(q: PageQuery, kind: 'uuid' | 'int' | 'text' = 'uuid'): PageRequest {
  return { limit: q.limit ?? DEFAULT_LIMIT, after: decodeCursor(q.cursor, kind) };
}

/** Rows were fetched with take = limit + 1: the extra row proves there is a next page. */
export function toPage<R, T>(rows: R[], limit: number, key: (r: R) => string, map: (r: R) => T): Page<T> {
  const items = rows.slice(0, limit);
  const more = rows.length > limit;
  return { items: items.map(map), nextCursor: more && items.length ? encodeCursor(key(items[items.length - 1]!)) : null };
}
