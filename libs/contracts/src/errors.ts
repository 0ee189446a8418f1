/**
 * Domain errors carry a code; one exception filter per HTTP app maps codes to statuses with an
 * exhaustive switch (`httpStatusFor`), so a new code cannot be forgotten at the edge.
 */
export const ErrorCode = {
  Validation: 'VALIDATION',
  Unauthenticated: 'UNAUTHENTICATED',
  Forbidden: 'FORBIDDEN',
  NotFound: 'NOT_FOUND',
  Conflict: 'CONFLICT',
  /** An Idempotency-Key replay of a request whose response carried a secret, which is never kept. */
  IdempotentReplaySecret: 'IDEMPOTENT_REPLAY_SECRET',
  PayloadTooLarge: 'PAYLOAD_TOO_LARGE',
  ImageUnresolvable: 'IMAGE_UNRESOLVABLE',
  /** The image's registry resolves to an address the registry address policy refuses (details.rule names it). */
  RegistryAddressRefused: 'REGISTRY_ADDRESS_REFUSED',
  RateLimited: 'RATE_LIMITED',
  Unavailable: 'UNAVAILABLE',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainError';
  }
}

export function assertUnreachable(x: never): never {
  throw new Error(`unreachable: ${String(x)}`);
}

export function httpStatusFor(code: ErrorCode): number {
  switch (code) {
    case ErrorCode.Validation:
      return 400;
    case ErrorCode.Unauthenticated:
      return 401;
    case ErrorCode.Forbidden:
      return 403;
    case ErrorCode.NotFound:
      return 404;
    case ErrorCode.Conflict:
    case ErrorCode.IdempotentReplaySecret:
      return 409;
    case ErrorCode.PayloadTooLarge:
      return 413;
    case ErrorCode.ImageUnresolvable:
    case ErrorCode.RegistryAddressRefused:
      return 422;
    case ErrorCode.RateLimited:
      return 429;
    case ErrorCode.Unavailable:
      return 503;
    case ErrorCode.Internal:
      return 500;
    default:
      return assertUnreachable(code);
  }
}

/** The one error body every HTTP app answers with. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; details?: Record<string, unknown> };
}
