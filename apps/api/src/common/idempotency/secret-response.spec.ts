import 'reflect-metadata';
import { Reflector } from '@nestjs/core';
import crypto from 'node:crypto';
import { Logger, type CallHandler, type ExecutionContext } from '@nestjs/common';
import { lastValueFrom, of } from 'rxjs';
import { DomainError } from '@berth/contracts';
import type { IdempotencyRepository } from '@berth/db';
import { IdempotencyInterceptor } from './idempotency.interceptor';
import { looksSecret, SecretResponse, withoutSecrets } from './secret-response';

const BRT = `brt_${'A'.repeat(43)}`;

describe('looksSecret / withoutSecrets', () => {
  it('finds secret-named string fields and Berth tokens at any depth', () => {
    expect(looksSecret({ id: 1, token: 'x' })).toBe(true);
    expect(looksSecret({ a: [{ b: { accessToken: 'eyJ' } }] })).toBe(true);
    expect(looksSecret({ note: BRT })).toBe(true);
    expect(looksSecret({ nested: [`bjt_${'z'.repeat(43)}`] })).toBe(true);
  });

  it('leaves ordinary bodies alone: display prefixes, empty or non-string fields', () => {
    expect(looksSecret({ prefix: 'brt_AbCdEf', name: 'token', password: '', secret: null, tokens: 3 })).toBe(false);
    expect(looksSecret(null)).toBe(false);
  });

  it('removes declared fields and anything secret-shaped, keeping the rest', () => {
    expect(withoutSecrets({ id: 1, token: BRT, key: 'v', deep: { password: 'p', ok: true, list: [BRT, 'x'] } }, ['key'])).toEqual({
      id: 1,
      deep: { ok: true, list: ['x'] },
    });
  });
});

describe('IdempotencyInterceptor with secret responses', () => {
  class FakeController {
    @SecretResponse('apiKey')
    declared() {}
    undeclared() {}
  }
  const setup = (handler: () => void, existing: unknown = null) => {
    const repo = {
      reserve: jest.fn().mockResolvedValue(existing),
      complete: jest.fn().mockResolvedValue(undefined),
      release: jest.fn().mockResolvedValue(undefined),
    };
    const headers: Record<string, string> = {};
    const req = { method: 'POST', originalUrl: '/v1/x', body: {}, headers: { 'idempotency-key': 'k' }, user: { kind: 'token', tokenId: 't', projectId: 'p' } };
    const res = { statusCode: 201, status: jest.fn(), setHeader: (k: string, v: string) => (headers[k] = v) };
    const ctx = {
      switchToHttp: () => ({ getRequest: () => req, getResponse: () => res }),
      getHandler: () => handler,
      getClass: () => FakeController,
    } as unknown as ExecutionContext;
    return { interceptor: new IdempotencyInterceptor(repo as unknown as IdempotencyRepository, new Reflector()), repo, ctx, headers };
  };
  const call = (body: unknown): CallHandler => ({ handle: () => of(body) });

  it('a declared secret field is answered once and stored without it, flagged', async () => {
    const { interceptor, repo, ctx } = setup(FakeController.prototype.declared);
    const out = await lastValueFrom(await interceptor.intercept(ctx, call({ id: 'a', apiKey: 'sk_live_x', createdAt: new Date(0) })));
    expect(out).toMatchObject({ apiKey: 'sk_live_x' });
    expect(repo.complete).toHaveBeenCalledWith('p', 'token:t', 'k', 201, { id: 'a', createdAt: '1970-01-01T00:00:00.000Z' }, true);
  });

  it('an undeclared but secret-shaped response is not stored either (and the omission is logged)', async () => {
    const logged = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
    const { interceptor, repo, ctx } = setup(FakeController.prototype.undeclared);
    await lastValueFrom(await interceptor.intercept(ctx, call({ id: 'a', token: BRT })));
    expect(repo.complete).toHaveBeenCalledWith('p', 'token:t', 'k', 201, { id: 'a' }, true);
    expect(logged).toHaveBeenCalledWith(expect.stringMatching(/FakeController\.undeclared .* without @SecretResponse/));
    logged.mockRestore();
  });

  it('an ordinary response is stored as is', async () => {
    const { interceptor, repo, ctx } = setup(FakeController.prototype.undeclared);
    await lastValueFrom(await interceptor.intercept(ctx, call({ id: 'a' })));
    expect(repo.complete).toHaveBeenCalledWith('p', 'token:t', 'k', 201, { id: 'a' });
  });

  it('a replay of a secret response is a 409 naming why, with the stored body', async () => {
    const requestHash = crypto.createHash('sha256').update('POST /v1/x\n{}').digest('hex');
    const { interceptor, ctx, headers } = setup(FakeController.prototype.declared, { requestHash, status: 201, response: { id: 'a' }, secretOmitted: true });
    const e = await interceptor.intercept(ctx, call({})).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(DomainError);
    expect(e).toMatchObject({ code: 'IDEMPOTENT_REPLAY_SECRET', details: { originalStatus: 201, original: { id: 'a' } } });
    expect((e as Error).message).toMatch(/secret \(apiKey\)/);
    expect(headers['Idempotent-Replayed']).toBe('true');
  });
});
