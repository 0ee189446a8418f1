import { DomainError, ErrorCode } from '@berth/contracts';

/**
 * Prisma's known request errors, turned into DomainErrors where they happen (the repositories), so
 * the HTTP layer maps only DomainError → status and never needs to know Prisma's error codes.
 */

interface KnownPrismaError {
  code: string;
  meta?: {
    modelName?: string;
    target?: string | string[];
    field_name?: string;
    column_name?: string;
    driverAdapterError?: { cause?: { kind?: string; originalCode?: string; originalMessage?: string; constraint?: { index?: string; fields?: string[] }; table?: string } };
  };
}

function asKnown(e: unknown): KnownPrismaError | null {
  if (typeof e !== 'object' || e === null || e instanceof DomainError) return null;
  const code = (e as { code?: unknown }).code;
  return typeof code === 'string' && /^P\d{4}$/.test(code) ? (e as KnownPrismaError) : null;
}

/** `ApiToken` → `API token`, `NodeJoinToken` → `node join token`. */
export function entityName(model: string): string {
  return model
    .replace(/([a-z0-9])([A-Z])/g, '$1 $2')
    .toLowerCase()
    .replace(/^api\b/, 'API');
}

/**
 * The columns of the violated constraint: from `meta.target` (Prisma's own engine) or from the
 * index name Prisma gives unique indexes and foreign keys, `<Model>_<field>_<field>_key|fkey`.
 */
function constraintFields(p: KnownPrismaError, model: string | undefined): string[] {
  const target = p.meta?.target;
  if (Array.isArray(target)) return target;
  if (typeof target === 'string') return [target];
  const cause = p.meta?.driverAdapterError?.cause;
  if (cause?.constraint?.fields?.length) return cause.constraint.fields;
  const index = cause?.constraint?.index;
  if (!index) return [];
  const table = cause?.table ?? model;
  const body = index.replace(/_(key|fkey|pkey)$/, '');
  const stripped = table && body.startsWith(`${table}_`) ? body.slice(table.length + 1) : body;
  return stripped.split('_').filter(Boolean);
}

const list = (fields: string[]) => fields.join(' and ');

/**
 * The DomainError for a known Prisma error, or the error itself when it is not one (a bug stays a
 * bug: the api answers 500 and logs it). `entity` names the repository's main model for errors that
 * do not name one.
 */
export function toDomainError(e: unknown, entity: string): unknown {
  const p = asKnown(e);
  if (!p) return e;
  const cause = p.meta?.driverAdapterError?.cause;
  const model = p.meta?.modelName ?? cause?.table;
  const what = model ? entityName(model) : entity;
  const kind = cause?.kind;
  if (p.code === 'P2002' || kind === 'UniqueConstraintViolation') {
    const fields = constraintFields(p, model);
    // Scope columns (projectId, serviceId...) are not what the caller can change: name the others.
    const named = fields.filter((f) => !/Id$/.test(f));
    const shown = named.length ? named : fields;
    const message = shown.length
      ? `a ${what} with this ${list(shown)} already exists: choose another ${list(shown)}`
      : `this ${what} already exists`;
    return new DomainError(ErrorCode.Conflict, message, { entity: what, ...(shown.length ? { field: shown.length === 1 ? shown[0] : shown } : {}) });
  }
  if (p.code === 'P2003' || kind === 'ForeignKeyConstraintViolation') {
    const fields = constraintFields(p, model);
    const message = fields.length
      ? `the ${list(fields)} of this ${what} refers to something that no longer exists: reload and retry`
      : `this ${what} refers to something that no longer exists: reload and retry`;
    return new DomainError(ErrorCode.Conflict, message, { entity: what, ...(fields.length ? { field: fields.length === 1 ? fields[0] : fields } : {}) });
  }
  switch (p.code) {
    case 'P2025':
      return new DomainError(ErrorCode.NotFound, `${what} not found (it may have been deleted meanwhile)`, { entity: what });
    case 'P2000': {
      const column = p.meta?.column_name;
      return new DomainError(ErrorCode.Validation, column ? `${column} is too long for a ${what}` : `a value is too long for a ${what}`, {
        entity: what,
        ...(column ? { field: column } : {}),
      });
    }
    case 'P2007':
    case 'P2023':
      return new DomainError(ErrorCode.Validation, `invalid value for a ${what}: ${cause?.originalMessage ?? 'a stored field has the wrong format'}`, { entity: what });
    case 'P2028':
    case 'P1001':
    case 'P1002':
    case 'P1008':
    case 'P1017':
      return new DomainError(ErrorCode.Unavailable, 'database is busy or unreachable: retry the request', { prismaCode: p.code });
    default:
      return e;
  }
}

/**
 * Class decorator for a repository: every method that returns a promise rejects with
 * `toDomainError(e, entity)` instead of Prisma's error. Methods are wrapped on the prototype, so Nest's
 * constructor metadata is untouched.
 */
export function MapsPrismaErrors(entity: string): ClassDecorator {
  return (target) => {
    const proto = target.prototype as Record<string, unknown>;
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor') continue;
      const d = Object.getOwnPropertyDescriptor(proto, name);
      if (!d || typeof d.value !== 'function') continue;
      const method = d.value as (...args: unknown[]) => unknown;
      const wrapped = function (this: unknown, ...args: unknown[]): unknown {
        const r = method.apply(this, args);
        return r instanceof Promise || (typeof r === 'object' && r !== null && typeof (r as PromiseLike<unknown>).then === 'function')
          ? Promise.resolve(r).catch((e: unknown) => {
              throw toDomainError(e, entity);
            })
          : r;
      };
      Object.defineProperty(wrapped, 'name', { value: name });
      Object.defineProperty(proto, name, { ...d, value: wrapped });
    }
  };
}
