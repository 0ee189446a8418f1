import { CallHandler, ExecutionContext, Injectable, NestInterceptor } from '@nestjs/common';
import crypto from 'node:crypto';
import type { Response } from 'express';
import { catchError, from, mergeMap, Observable, of, throwError } from 'rxjs';
import { DomainError, ErrorCode } from '@berth/contracts';
import { IDEMPOTENCY_IN_PROGRESS, IdempotencyRepository } from '../../db';
import { principalKey, type AuthedRequest } from '../../auth/principal';

const KEY_RE = /^[\x21-\x7e]{1,255}$/;

/**
 * `Idempotency-Key` on POST: the first request with a key runs and its 2xx response is stored
 * (per project + principal); a retry with the same key and the same method, path and body gets
 * the stored response (header `Idempotent-Replayed: true`), a retry with a different request is
 * a 409, and one arriving while the first still runs is a 409 too. Failed requests release the
 * key so they can be retried.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(private readonly repo: IdempotencyRepository) {}

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
      res.status(existing.status);
      res.setHeader('Idempotent-Replayed', 'true');
      return of(existing.response);
    }
    return next.handle().pipe(
      mergeMap((body) => from(this.repo.complete(projectId, principal, key, res.statusCode, body ?? null).then(() => body))),
      catchError((e) => from(this.repo.release(projectId, principal, key).catch(() => undefined)).pipe(mergeMap(() => throwError(() => e)))),
    );
  }
}
