import { applyDecorators, Header, SetMetadata } from '@nestjs/common';
import { ApiExtension, ApiResponse } from '@nestjs/swagger';

export const SECRET_RESPONSE = 'berth:secret-response';
/** The OpenAPI extension naming the secret fields of an operation's response. */
export const SECRET_RESPONSE_EXTENSION = 'x-berth-secret-response';

/**
 * Declares that the handler's response carries a secret shown once (a token, a password) in the
 * named top-level fields. Such a response is never stored: with an `Idempotency-Key`, the key
 * keeps the response without those fields and a replay answers 409 IDEMPOTENT_REPLAY_SECRET
 * (see IdempotencyInterceptor). It is also sent with `Cache-Control: no-store` and marked in the
 * OpenAPI document (`x-berth-secret-response`).
 *
 * A handler that forgets the decorator still leaks nothing: the interceptor recognises
 * secret-shaped responses (`looksSecret`), treats them the same way and logs the omission as a bug.
 */
export const SecretResponse = (...fields: [string, ...string[]]) =>
  applyDecorators(
    SetMetadata(SECRET_RESPONSE, fields),
    ApiExtension(SECRET_RESPONSE_EXTENSION, fields),
    ApiResponse({
      status: 409,
      description:
        `IDEMPOTENT_REPLAY_SECRET: an Idempotency-Key replay. The response carried a secret (${fields.join(', ')}) that is shown once and never stored; ` +
        'details.original is the first response without it, details.originalStatus its status.',
    }),
    Header('Cache-Control', 'no-store'),
  );

/** Field names that hold a secret wherever they appear in a response. */
export const SECRET_FIELD_NAMES: ReadonlySet<string> = new Set(['token', 'accessToken', 'refreshToken', 'password', 'secret', 'privateKey', 'clientSecret']);
/** Prefixes of the opaque secrets Berth issues: API tokens and node join tokens. */
const SECRET_VALUE = /^(brt|bjt)_[A-Za-z0-9_-]{20,}$/;

/** True when a response body holds something that looks like a secret: a secret-named string field or a Berth token, at any depth. */
export function looksSecret(body: unknown, depth = 0): boolean {
  if (typeof body === 'string') return SECRET_VALUE.test(body);
  if (typeof body !== 'object' || body === null || depth > 8) return false;
  if (Array.isArray(body)) return body.some((v) => looksSecret(v, depth + 1));
  return Object.entries(body).some(([k, v]) => (SECRET_FIELD_NAMES.has(k) && typeof v === 'string' && v !== '') || looksSecret(v, depth + 1));
}

/** The body without its secrets: the declared top-level fields and anything `looksSecret` finds. */
export function withoutSecrets(body: unknown, fields: readonly string[] = [], depth = 0): unknown {
  if (typeof body === 'string') return SECRET_VALUE.test(body) ? undefined : body;
  if (typeof body !== 'object' || body === null || depth > 8) return body;
  if (Array.isArray(body)) return body.map((v) => withoutSecrets(v, [], depth + 1)).filter((v) => v !== undefined);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(body)) {
    if (fields.includes(k) || (SECRET_FIELD_NAMES.has(k) && typeof v === 'string')) continue;
    const clean = withoutSecrets(v, [], depth + 1);
    if (clean !== undefined) out[k] = clean;
  }
  return out;
}
