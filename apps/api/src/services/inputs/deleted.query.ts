import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsOptional, IsString, Matches } from 'class-validator';
import { PageQuery, ProjectQuery } from '../../common/pagination/pagination';
import type { DeletedSelector } from '../services.service';

const DELETED = /^(true|false|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
const DELETED_DOC = {
  description:
    'read a deleted service instead of the live one: `true` = the most recently deleted service of this name, ' +
    'or the id of one (several deleted services may have had the name; `GET /v1/services?deleted=true` lists them)',
  example: 'true',
};
const DELETED_MESSAGE = { message: 'deleted must be true, false or the id of a deleted service' };

/** `?deleted=` on a service's history reads (detail, revisions, replicas, events). */
export class DeletedQuery extends ProjectQuery {
  @ApiPropertyOptional(DELETED_DOC)
  @IsOptional()
  @IsString()
  @Matches(DELETED, DELETED_MESSAGE)
  deleted?: string;
}

export class DeletedPageQuery extends PageQuery {
  @ApiPropertyOptional(DELETED_DOC)
  @IsOptional()
  @IsString()
  @Matches(DELETED, DELETED_MESSAGE)
  deleted?: string;
}

/** The validated query value as a selector; undefined = the live service. */
export function deletedSelector(q: { deleted?: string }): DeletedSelector | undefined {
  if (q.deleted === undefined || q.deleted === 'false') return undefined;
  return q.deleted === 'true' ? true : q.deleted;
}
