import { client, expectError, startApi, type ApiHarness } from './helpers/api-harness';

jest.setTimeout(60_000);

describe('per-principal rate limit', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApi('berth_api_ratelimit', { BERTH_API_RATE_LIMIT_RPS: '0.5', BERTH_API_RATE_LIMIT_BURST: '3' });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('answers 429 with Retry-After once the bucket is empty, per token', async () => {
    const admin = client(h.base, { token: h.adminToken });
    const created = await admin('POST', '/v1/tokens', { name: 'second', role: 'viewer' });
    expect(created.status).toBe(201);
    // Burst 3: the token creation and one more read pass, the next read is refused.
    expect((await admin('GET', '/v1/services')).status).toBe(200);
    expect((await admin('GET', '/v1/services')).status).toBe(200);
    const limited = await admin('GET', '/v1/services');
    const e = expectError(limited, 429, 'RATE_LIMITED', /rate limit/);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    expect(e.details.retryAfterSeconds).toBe(Number(limited.headers.get('retry-after')));
    // Another token has its own bucket.
    expect((await client(h.base, { token: created.body.token })('GET', '/v1/services')).status).toBe(200);
  });
});
