import { ApiClient, ApiError } from './client';

function recorder(responses: Response[]) {
  const calls: { url: string; init: RequestInit }[] = [];
  const fetchImpl = (async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    const r = responses.shift();
    if (!r) throw new TypeError('fetch failed');
    return r;
  }) as unknown as typeof fetch;
  return { calls, fetchImpl };
}

const json = (status: number, body: unknown) => new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

describe('ApiClient', () => {
  it('sends the bearer token, the project header and an idempotency key on writes', async () => {
    const { calls, fetchImpl } = recorder([json(200, { ok: 1 }), json(201, { id: 'x' })]);
    const c = new ApiClient(() => ({ token: 'tok', project: 'demo' }), undefined, fetchImpl);
    expect(await c.get('/v1/services')).toEqual({ ok: 1 });
    await c.post('/v1/services/web/deployments', { image: 'r/web:v1' });
    const h0 = calls[0]!.init.headers as Record<string, string>;
    expect(h0.authorization).toBe('Bearer tok');
    expect(h0['x-berth-project']).toBe('demo');
    expect(h0['idempotency-key']).toBeUndefined();
    const h1 = calls[1]!.init.headers as Record<string, string>;
    expect(h1['idempotency-key']).toMatch(/^[0-9a-f]{32}$/);
    expect(h1['content-type']).toBe('application/json');
    expect(calls[1]!.init.body).toBe('{"image":"r/web:v1"}');
  });

  it('turns {error:{code,message,details}} into an ApiError with the API’s words, and reports 401s', async () => {
    const ended: string[] = [];
    const { fetchImpl } = recorder([
      json(422, { error: { code: 'IMAGE_UNRESOLVABLE', message: 'manifest unknown', details: { registryCode: 'MANIFEST_UNKNOWN' } } }),
      json(401, { error: { code: 'UNAUTHENTICATED', message: 'login token is invalid or expired: log in again' } }),
      new Response('<html>bad gateway</html>', { status: 502 }),
    ]);
    const c = new ApiClient(() => ({ token: 't', project: null }), (e) => ended.push(e.message), fetchImpl);
    const e1 = (await c.post('/v1/images', { reference: 'x' }).catch((e) => e)) as ApiError;
    expect(e1).toBeInstanceOf(ApiError);
    expect([e1.status, e1.code, e1.message, e1.details]).toEqual([422, 'IMAGE_UNRESOLVABLE', 'manifest unknown', { registryCode: 'MANIFEST_UNKNOWN' }]);
    await expect(c.get('/v1/services')).rejects.toMatchObject({ code: 'UNAUTHENTICATED' });
    expect(ended).toEqual(['login token is invalid or expired: log in again']);
    await expect(c.get('/v1/x')).rejects.toMatchObject({ status: 502, code: 'HTTP_502', message: '<html>bad gateway</html>' });
    await expect(c.get('/v1/x')).rejects.toMatchObject({ status: 0, code: 'NETWORK' });
  });

  it('follows cursors through every page, bounded', async () => {
    const { calls, fetchImpl } = recorder([json(200, { items: [1, 2], nextCursor: 'abc' }), json(200, { items: [3], nextCursor: null })]);
    const c = new ApiClient(() => null, undefined, fetchImpl);
    expect(await c.all<number>('/v1/images')).toEqual([1, 2, 3]);
    expect(calls.map((x) => x.url)).toEqual(['/v1/images?limit=200', '/v1/images?limit=200&cursor=abc']);
  });

  it('streams SSE with the Authorization header (which EventSource cannot send)', async () => {
    const body = new ReadableStream<Uint8Array>({
      start(ctrl) {
        const enc = new TextEncoder();
        ctrl.enqueue(enc.encode('data: {"line":"a"}\n\n: keepalive\n\nda'));
        ctrl.enqueue(enc.encode('ta: {"line":"b"}\n\n'));
        ctrl.close();
      },
    });
    const { calls, fetchImpl } = recorder([new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } })]);
    const c = new ApiClient(() => ({ token: 'tok', project: 'p' }), undefined, fetchImpl);
    const got: string[] = [];
    await c.stream('/v1/services/web/logs?follow=1', (d) => got.push(d), new AbortController().signal);
    expect(got).toEqual(['{"line":"a"}', '{"line":"b"}']);
    expect((calls[0]!.init.headers as Record<string, string>).authorization).toBe('Bearer tok');
  });
});
