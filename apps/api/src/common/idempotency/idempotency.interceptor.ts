import { CallHandler, ExecutionContext, Injectable, Logger, NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import crypto from 'node:crypto';
import type { Response } from 'express';
import { catchError, from, mergeMap, Observable, of, throwError } from 'rxjs';
import { DomainError, ErrorCode } from '@berth/contracts';
import { IDEMPOTENCY_IN_PROGRESS, IdempotencyRepository } from '@berth/db';
import { principalKey, type AuthedRequest } from '../../auth/principal';
import { looksSecret, SECRET_RESPONSE, withoutSecrets } from './secret-response';

const KEY_RE = /^[\x21-\x7e]{1,255}$/;

/**
 * `Idempotency-Key` on POST: the first request with a key runs and its 2xx response is stored
 * (per project + principal); a retry with the same key and the same method, path and body gets
 * the stored response (header `Idempotent-Replayed: true`), a retry with a different request is
 * a 409, and one arriving while the first still runs is a 409 too. Failed requests release the
 * key so they can be retried.
 *
 * A response that carries a secret (a handler marked @SecretResponse, or one whose body looks
 * secret) is never stored: the key keeps the body without the secret, flagged `secretOmitted`,
 * and a replay answers 409 IDEMPOTENT_REPLAY_SECRET with that body in `details.original`, so the
 * client learns what was created (to revoke it if the secret was lost) and the secret is never
 * shown twice nor kept for 24 h in plain text.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  private readonly log = new Logger('idempotency');

  constructor(
    private readonly repo: IdempotencyRepository,
    private readonly reflector: Reflector,
  ) {}

  async intercept(ctx: ExecutionContext, next: CallHandler): Promise<Observable<unknown>> {
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    const res = ctx.switchToHttp().getResponse<Response>();
    const key = req.headers['idempotency-key'];
    if (req.method !== 'POST' || key === undefined || !req.user) return next.handle();
    if (typeof key !== 'string' || !KEY_RE.test(key)) {
      throw new DomainError(ErrorCode.Validation, 'Idempotency-Key must be 1-255 visible ASCII characters', { field: 'Idempotency-Key' });
    }
    const projectId = req.project?.id ?? (req.user.kind === 'token' ? req.user.projectId : undefined);
    if (!projectId) return next.handle();
    const principal = principalKey(req.user);
    const requestHash = crypto
      .createHash('sha256')
      .update(`${req.method} ${req.originalUrl}\n${JSON.stringify(req.body ?? null)}`)
      .digest('hex');

    const existing = await this.repo.reserve(projectId, principal, key, requestHash);
    if (existing) {
      if (existing.requestHash !== requestHash) {
        throw new DomainError(ErrorCode.Conflict, 'Idempotency-Key was already used with a different request', { field: 'Idempotency-Key' });
      }
      if (existing.status === IDEMPOTENCY_IN_PROGRESS) {
        throw new DomainError(ErrorCode.Conflict, 'a request with this Idempotency-Key is still in progress', { field: 'Idempotency-Key' });
      }
      if (existing.secretOmitted) {
        res.setHeader('Idempotent-Replayed', 'true');
        const names = this.reflector.get<string[] | undefined>(SECRET_RESPONSE, ctx.getHandler());
        throw new DomainError(
          ErrorCode.IdempotentReplaySecret,
          `the request with this Idempotency-Key already succeeded (${existing.status}), but its response carried a secret` +
            `${names ? ` (${names.join(', ')})` : ''} that is shown only once and never stored, so it cannot be replayed. ` +
            'details.original is that response without the secret; if the secret was lost, revoke what was created and make a new request with a new key',
          { field: 'Idempotency-Key', originalStatus: existing.status, original: existing.response },
        );
      }
      res.status(existing.status);
      res.setHeader('Idempotent-Replayed', 'true');
      return of(existing.response);
    }
    const secretFields = this.reflector.get<string[] | undefined>(SECRET_RESPONSE, ctx.getHandler());
    return next.handle().pipe(
      mergeMap((body) => from(this.store(ctx, projectId, principal, key, res.statusCode, body, secretFields).then(() => body))),
      catchError((e) => from(this.repo.release(projectId, principal, key).catch(() => undefined)).pipe(mergeMap(() => throwError(() => e)))),
    );
  }

  private store(ctx: ExecutionContext, projectId: string, principal: string, key: string, status: number, body: unknown, secretFields: string[] | undefined) {
    // What would be stored, as JSON (Dates become strings), so the secret check sees what Postgres would.
    const plain: unknown = body === undefined ? null : JSON.parse(JSON.stringify(body));
    if (!secretFields && !looksSecret(plain)) return this.repo.complete(projectId, principal, key, status, plain);
    if (!secretFields) {
      this.log.error(
        `${ctx.getClass().name}.${ctx.getHandler().name} returned what looks like a secret without @SecretResponse: stored without it (add the decorator)`,
      );
    }
    return this.repo.complete(projectId, principal, key, status, withoutSecrets(plain, secretFields), true);
  }
}
