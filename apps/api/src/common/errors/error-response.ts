import crypto from 'node:crypto';
import { HttpException } from '@nestjs/common';
import { DomainError, ErrorBody, ErrorCode, httpStatusFor } from '@berth/contracts';
import { InvalidReferenceError, OciError, RegistryAddressRefusedError, RegistryAuthError, RegistryNotFoundError, RegistryUnavailableError } from '@berth/oci';

export interface ErrorResponse {
  status: number;
  body: ErrorBody;
  /** True when the error is a bug (a 500): it must be logged with its stack. */
  unexpected: boolean;
}

const CODE_BY_STATUS: Record<number, ErrorCode> = {
  400: ErrorCode.Validation,
  401: ErrorCode.Unauthenticated,
  403: ErrorCode.Forbidden,
  404: ErrorCode.NotFound,
  409: ErrorCode.Conflict,
  413: ErrorCode.PayloadTooLarge,
  422: ErrorCode.ImageUnresolvable,
  429: ErrorCode.RateLimited,
  503: ErrorCode.Unavailable,
};

const make = (status: number, code: ErrorCode, message: string, details?: Record<string, unknown>): ErrorResponse => ({
  status,
  body: { error: { code, message, ...(details ? { details } : {}) } },
  unexpected: status >= 500 && code === ErrorCode.Internal,
});

/**
 * The one mapping from anything thrown to `{error: {code, message, details}}`: domain errors by
 * code (httpStatusFor), Nest HTTP exceptions, body-parser errors and registry errors. Database
 * errors arrive as DomainErrors already (libs/db repositories map Prisma's). Whatever is left is a
 * 500 and a bug, with an id that is logged.
 */
export function toErrorResponse(e: unknown): ErrorResponse {
  if (e instanceof DomainError) return make(httpStatusFor(e.code), e.code, e.message, e.details);

  if (e instanceof InvalidReferenceError) {
    return make(400, ErrorCode.Validation, e.message, { field: 'image', part: e.part, reference: e.input });
  }
  if (e instanceof OciError) return fromRegistryError(e);

  if (e instanceof HttpException) {
    const status = e.getStatus();
    const r = e.getResponse();
    const message =
      typeof r === 'string' ? r : Array.isArray((r as { message?: unknown }).message) ? ((r as { message: string[] }).message).join('; ') : String((r as { message?: unknown }).message ?? e.message);
    if (status === 404 && /^Cannot (GET|POST|PUT|PATCH|DELETE|HEAD|OPTIONS)/.test(message)) {
      return make(404, ErrorCode.NotFound, `no such endpoint: ${message.replace(/^Cannot /, '')}`);
    }
    return make(status, CODE_BY_STATUS[status] ?? (status >= 500 ? ErrorCode.Internal : ErrorCode.Validation), message);
  }

  const bodyParser = fromBodyParserError(e);
  if (bodyParser) return bodyParser;

  // A bug: the caller gets an id to quote, the log line carries the same id and the stack.
  const errorId = crypto.randomBytes(6).toString('hex');
  return make(500, ErrorCode.Internal, `internal error (id ${errorId}): the api logged it; report the id if it persists`, { errorId });
}

export function fromRegistryError(e: OciError): ErrorResponse {
  if (e instanceof RegistryAddressRefusedError) {
    return make(422, ErrorCode.RegistryAddressRefused, e.message, { rule: e.rule, host: e.host, address: e.address });
  }
  if (e instanceof RegistryUnavailableError) {
    return make(503, ErrorCode.Unavailable, `registry unreachable: ${e.message}`);
  }
  if (e instanceof RegistryNotFoundError) {
    return make(422, ErrorCode.ImageUnresolvable, e.message, {
      registryCode: e.code,
      registryErrors: e.registryErrors,
      ...('available' in e ? { availablePlatforms: (e as { available: string[] }).available } : {}),
    });
  }
  if (e instanceof RegistryAuthError) {
    return make(422, ErrorCode.ImageUnresolvable, `registry refused access: ${e.message}`, {
      registryCode: e.code,
      hint: 'store credentials with PUT /v1/registry-credentials/{registry}',
    });
  }
  return make(422, ErrorCode.ImageUnresolvable, e.message, { registryCode: e.code });
}

interface BodyParserError {
  type?: string;
  status?: number;
  statusCode?: number;
  expose?: boolean;
  message?: string;
  limit?: number;
}

function fromBodyParserError(e: unknown): ErrorResponse | null {
  if (typeof e !== 'object' || e === null) return null;
  const b = e as BodyParserError;
  if (typeof b.type !== 'string') return null;
  switch (b.type) {
    case 'entity.parse.failed':
      return make(400, ErrorCode.Validation, `malformed JSON body: ${b.message ?? 'parse error'}`);
    case 'entity.too.large':
      return make(413, ErrorCode.PayloadTooLarge, `request body exceeds the limit of ${b.limit ?? '?'} bytes`, { limit: b.limit });
    case 'encoding.unsupported':
    case 'charset.unsupported':
      return make(400, ErrorCode.Validation, b.message ?? 'unsupported body encoding');
    case 'request.aborted':
    case 'request.size.invalid':
    case 'stream.encoding.set':
    case 'stream.not.readable':
      return make(400, ErrorCode.Validation, b.message ?? 'invalid request body');
    default: {
      const status = b.status ?? b.statusCode;
      if (status && status >= 400 && status < 500) return make(status, CODE_BY_STATUS[status] ?? ErrorCode.Validation, b.message ?? 'bad request');
      return null;
    }
  }
}
