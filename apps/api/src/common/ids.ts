import { DomainError, ErrorCode } from '@berth/contracts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Ids in paths are uuids; anything else cannot exist, so it is the same 404 as a missing row. */
export function assertId(id: string, what: string): string {
  if (!UUID.test(id)) throw new DomainError(ErrorCode.NotFound, `${what} '${id.slice(0, 80)}' not found`);
  return id.toLowerCase();
}

export const notFound = (what: string, name: string) => new DomainError(ErrorCode.NotFound, `${what} '${name.slice(0, 100)}' not found`);
