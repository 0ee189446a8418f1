/**
 * Bad input never reaches Postgres or the dashboard (issue 13, item 7): null for fields that are
 * not nullable, NUL bytes anywhere (Postgres text cannot store them), prototype keys in JSON and
 * /v1 paths that match no route. Real api, real Postgres, the dashboard mounted as in main.ts.
 */
import { client, expectError, startApi, type ApiHarness, type Client } from './helpers/api-harness';
import { pushWebImage, REGISTRY, uniqueRepo } from './helpers/images';

jest.setTimeout(60_000);

describe('input hygiene (real api + Postgres, dashboard mounted)', () => {
  let h: ApiHarness;
  let admin: Client;
  let image: string;

  beforeAll(async () => {
    h = await startApi('berth_api_hygiene');
    const repo = uniqueRepo('hygiene');
    await pushWebImage(repo, 'v1', 'hygiene');
    image = `${REGISTRY}/${repo}:v1`;
    admin = client(h.base, { token: h.adminToken });
    expect((await admin('POST', '/v1/services', { name: 'web', image, port: 8080 })).status).toBe(201);
  });
  afterAll(async () => {
    await h?.close();
  });

  describe('null', () => {
    it('port: null on service create and patch is never a 5xx (a worker without a port, or a 400 naming the field)', async () => {
      for (const r of [
        await admin('POST', '/v1/services', { name: 'nullport', image, port: null }),
        await admin('PATCH', '/v1/services/web', { port: null }),
      ]) {
        expect(r.status).toBeLessThan(500);
        if (r.status >= 400) expectError(r, 400, 'VALIDATION', /port/);
      }
    });

    it.each([
      ['POST', '/v1/tokens', { name: 't', role: 'viewer', expiresInDays: null }, 'expiresInDays'],
      ['POST', '/v1/nodes/join-tokens', { description: null }, 'description'],
      ['POST', '/v1/nodes/join-tokens', { expiresInHours: null }, 'expiresInHours'],
      ['POST', '/v1/members', { email: 'x@example.com', role: 'viewer', password: null }, 'password'],
      ['POST', '/v1/services/web/rollback', { revision: null }, 'revision'],
      ['POST', '/v1/services/web/deployments', { image: null }, 'image'],
      ['PUT', '/v1/services/web/scale', { min: 0, max: 2, replicas: null }, 'replicas'],
      ['PUT', '/v1/services/web/scale', { min: 0, max: null }, 'max'],
      ['POST', '/v1/images', { reference: null }, 'reference'],
    ])('%s %s with %j → 400 naming %s', async (method, path, body, field) => {
      const e = expectError(await admin(method, path, body), 400, 'VALIDATION', new RegExp(`\\b${field}\\b`));
      expect(e.details.fields.map((f: { field: string }) => f.field)).toContain(field);
    });

    it('a nullable field still takes null (command: null restores the image default)', async () => {
      const r = await admin('PATCH', '/v1/services/web', { command: null });
      expect(r.status).toBe(200);
    });
  });

  describe('NUL bytes', () => {
    it.each(['drain', 'undrain'])('a NUL in the node name of %s → 400', async (op) => {
      expectError(await admin('POST', `/v1/nodes/worker%001/${op}`), 400, 'VALIDATION', /NUL/);
    });

    it('a NUL in any path parameter or query string → 400 naming it', async () => {
      expectError(await admin('GET', '/v1/services/we%00b'), 400, 'VALIDATION', /NUL/);
      expectError(await admin('DELETE', '/v1/tokens/%00'), 400, 'VALIDATION', /NUL/);
      const e = expectError(await admin('GET', '/v1/events?cursor=a%00b'), 400, 'VALIDATION', /NUL/);
      expect(e.details).toMatchObject({ field: 'cursor' });
    });

    it('a NUL in any JSON string (value or key, at any depth) → 400 naming the field', async () => {
      let e = expectError(await admin('POST', '/v1/tokens', { name: 'a\u0000b', role: 'viewer' }), 400, 'VALIDATION', /NUL/);
      expect(e.details).toMatchObject({ field: 'name' });
      e = expectError(await admin('PATCH', '/v1/services/web', { env: { A: 'x\u0000' } }), 400, 'VALIDATION', /NUL/);
      expect(e.details).toMatchObject({ field: 'env.A' });
      e = expectError(await admin('PATCH', '/v1/services/web', { command: ['sh', '-c', '\u0000'] }), 400, 'VALIDATION', /NUL/);
      expect(e.details).toMatchObject({ field: 'command.2' });
      e = expectError(await admin('POST', '/v1/nodes/join-tokens', { 'desc\u0000': 'x' }), 400, 'VALIDATION', /NUL/);
      // Other control characters are ordinary text: stored and given back.
      const ok = await admin('POST', '/v1/nodes/join-tokens', { description: 'tab\there\u0001\u001f\u007f' });
      expect(ok.status).toBe(201);
      expect(ok.body.description).toBe('tab\there\u0001\u001f\u007f');
    });
  });

  it('an unpaired surrogate (not Unicode text) in any string → 400 naming the field', async () => {
    // validator.js's isEmail threw on it: a 500.
    let e = expectError(await client(h.base)('POST', '/v1/auth/login', { email: '\ud800', password: 'x' }), 400, 'VALIDATION', /surrogate/);
    expect(e.details).toMatchObject({ field: 'email' });
    e = expectError(await admin('POST', '/v1/members', { email: '\udc00@example.com', role: 'viewer' }), 400, 'VALIDATION', /surrogate/);
    expect(e.details).toMatchObject({ field: 'email' });
    expect((await admin('POST', '/v1/nodes/join-tokens', { description: 'emoji 😀' })).status).toBe(201);
  });

  describe('prototype keys', () => {
    it.each([
      ['{"__proto__": {"role": "admin"}, "name": "t", "role": "viewer"}', '__proto__'],
      ['{"name": "t", "role": "viewer", "constructor": {"prototype": {"x": 1}}}', 'constructor'],
      ['{"name": "t", "role": "viewer", "prototype": 1}', 'prototype'],
    ])('POST /v1/tokens %s → 400 naming %s', async (raw, field) => {
      const e = expectError(await admin('POST', '/v1/tokens', undefined, { raw }), 400, 'VALIDATION', new RegExp(field));
      expect(e.details).toMatchObject({ field });
    });

    it('nested, inside maps and arrays too', async () => {
      let e = expectError(await admin('PATCH', '/v1/services/web', undefined, { raw: '{"resources": {"__proto__": {"cpuMillis": 1}}}' }), 400, 'VALIDATION', /__proto__/);
      expect(e.details).toMatchObject({ field: 'resources.__proto__' });
      e = expectError(await admin('PATCH', '/v1/services/web', undefined, { raw: '{"env": {"constructor": "x"}}' }), 400, 'VALIDATION', /constructor/);
      expect(e.details).toMatchObject({ field: 'env.constructor' });
      e = expectError(await admin('PATCH', '/v1/services/web', undefined, { raw: '{"command": [{"__proto__": 1}]}' }), 400, 'VALIDATION', /__proto__/);
      expect(e.details).toMatchObject({ field: 'command.0.__proto__' });
    });

    it('as a query parameter', async () => {
      expectError(await admin('GET', '/v1/services?__proto__=1'), 400, 'VALIDATION', /__proto__/);
    });
  });

  describe('/v1 paths always answer JSON', () => {
    it.each([
      '/v1/services/..%2f..%2fetc%2fpasswd',
      '/v1/services/..%2F..%2F..%2Findex.html',
      '/v1/..%2findex.html',
      '/v1/nope',
      '/v1',
      '/V1/services/..%2f..%2fx',
      '/v1/services/web/revisions/..%2f..%2f..%2f',
      '/v1/services/%ZZ',
      '/v1/services/web%',
    ])('GET %s', async (path) => {
      const r = await admin('GET', path);
      expect(r.headers.get('content-type')).toMatch(/^application\/json/);
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      expect(r.body.error).toEqual(expect.objectContaining({ code: expect.any(String), message: expect.any(String) }));
    });

    it('the dashboard still serves its own paths', async () => {
      const r = await client(h.base)('GET', '/services/web');
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toMatch(/^text\/html/);
    });
  });
});
