/**
 * Secrets stay secret under Idempotency-Key (issue 13, item 8): a response that carries a secret
 * is never stored, and a replay answers 409 IDEMPOTENT_REPLAY_SECRET without it. Real api and
 * Postgres; the idempotency table is read directly.
 */
import { Client as PgClient } from 'pg';
import { SECRET_RESPONSE_EXTENSION } from '../../../apps/api/src/common/idempotency/secret-response';
import { client, expectError, startApi, type ApiHarness, type Client } from './helpers/api-harness';

jest.setTimeout(60_000);

describe('secret responses and Idempotency-Key (real api + Postgres)', () => {
  let h: ApiHarness;
  let admin: Client;
  let pg: PgClient;

  beforeAll(async () => {
    h = await startApi('berth_api_secret_idem');
    admin = client(h.base, { token: h.adminToken });
    pg = new PgClient({ connectionString: h.config.DATABASE_URL });
    await pg.connect();
  });
  afterAll(async () => {
    await pg?.end();
    await h?.close();
  });

  const storedRow = async (key: string) => {
    const { rows } = await pg.query<{ status: number; response: string; secretOmitted: boolean }>(
      `select status, response::text as response, "secretOmitted" from "IdempotencyKey" where key = $1`,
      [key],
    );
    expect(rows).toHaveLength(1);
    return rows[0]!;
  };

  it.each([
    ['/v1/tokens', { name: 'ci', role: 'deployer' }, /^brt_/],
    ['/v1/nodes/join-tokens', { description: 'rack 1' }, /^bjt_/],
  ])('POST %s: the secret is shown once, never stored, and a replay is a 409 without it', async (path, body, shape) => {
    const headers = { 'idempotency-key': `once-${path}` };
    const first = await admin('POST', path, body, { headers });
    expect(first.status).toBe(201);
    expect(first.body.token).toMatch(shape);
    expect(first.headers.get('cache-control')).toBe('no-store');
    const secret = first.body.token as string;

    const row = await storedRow(headers['idempotency-key']);
    expect(row.secretOmitted).toBe(true);
    expect(row.status).toBe(201);
    expect(row.response).not.toContain(secret);
    expect(row.response).not.toMatch(/b[rj]t_[A-Za-z0-9_-]{20,}/); // the display prefix (brt_ + 6) is not the secret
    expect(JSON.parse(row.response)).toMatchObject({ id: first.body.id });

    const replay = await admin('POST', path, body, { headers });
    const e = expectError(replay, 409, 'IDEMPOTENT_REPLAY_SECRET', /already succeeded \(201\).*secret \(token\).*shown only once/);
    expect(replay.text).not.toContain(secret);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(e.details).toMatchObject({ field: 'Idempotency-Key', originalStatus: 201, original: { id: first.body.id } });
    expect(e.details.original).not.toHaveProperty('token');

    // Nothing ran twice, and the same key with another body is still the ordinary conflict.
    expectError(await admin('POST', path, { ...body, description: 'other' }, { headers }), 409, 'CONFLICT', /different request/);
  });

  it('the replay created nothing: one token with that name', async () => {
    const list = await admin('GET', '/v1/tokens?limit=200');
    expect(list.body.items.filter((t: { name: string }) => t.name === 'ci')).toHaveLength(1);
  });

  it('responses without a secret are still stored and replayed as before', async () => {
    const headers = { 'idempotency-key': 'plain-1' };
    const first = await admin('POST', '/v1/members', { email: 'dev@example.com', role: 'viewer', password: 'a long password' }, { headers });
    expect(first.status).toBe(201);
    const replay = await admin('POST', '/v1/members', { email: 'dev@example.com', role: 'viewer', password: 'a long password' }, { headers });
    expect(replay.status).toBe(201);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body).toEqual(first.body);
    const row = await storedRow('plain-1');
    expect(row.secretOmitted).toBe(false);
    expect(row.response).not.toContain('a long password');
  });

  it('OpenAPI marks every operation that returns a secret', async () => {
    const doc = (await client(h.base)('GET', '/docs-json')).body as { paths: Record<string, Record<string, Record<string, unknown>>> };
    const marked = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops)
        .filter(([, op]) => op[SECRET_RESPONSE_EXTENSION])
        .map(([m]) => `${m.toUpperCase()} ${p}`),
    );
    expect(marked.sort()).toEqual(['POST /v1/auth/login', 'POST /v1/nodes/join-tokens', 'POST /v1/nodes/{nodeId}/pull-credentials', 'POST /v1/tokens']);
  });
});
