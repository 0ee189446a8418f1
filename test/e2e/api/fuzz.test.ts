/**
 * Malformed requests against the real api (with the dashboard mounted as in production): zero 5xx
 * allowed, every error carries the common body and every /v1 path answers JSON.
 *
 * 1. Systematic: every operation of the OpenAPI document (the test fails when one is missing from
 *    CATALOGUE), with each body field set to null, each string to NUL / control characters /
 *    encoded slashes, prototype keys, each path parameter with encoded slashes, NUL and control
 *    bytes, and each query parameter likewise. A request holding a NUL must get a 4xx; null for a
 *    field OpenAPI does not mark nullable must get a 4xx (services' create/patch excepted: their
 *    contract is moving to zod, `port: null` may become valid); a 2xx that carries a secret must
 *    come from an operation marked @SecretResponse, and the idempotency table must hold no secret.
 * 2. Random: seeded junk over every route (BERTH_FUZZ_SEED to reproduce; the seed is printed).
 */
import { Client as PgClient } from 'pg';
import { looksSecret, SECRET_RESPONSE_EXTENSION } from '../../../apps/api/src/common/idempotency/secret-response';
import { client, startApi, type ApiHarness } from './helpers/api-harness';
import { pushWebImage, REGISTRY, uniqueRepo } from './helpers/images';

jest.setTimeout(120_000);

function mulberry32(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const REQUESTS = Number(process.env.BERTH_FUZZ_REQUESTS ?? 2400);

interface OpenApiDoc {
  paths: Record<string, Record<string, { parameters?: { in: string; name: string }[]; requestBody?: { content: Record<string, { schema: Schema }> }; [k: string]: unknown }>>;
  components: { schemas: Record<string, Schema> };
}
interface Schema {
  $ref?: string;
  allOf?: Schema[];
  properties?: Record<string, Schema>;
  additionalProperties?: Schema | boolean;
  items?: Schema;
  nullable?: boolean;
}

/** What a reply must look like; returns a problem or null. */
function checkReply(path: string, status: number, contentType: string | null, text: string): string | null {
  if (status >= 500) return `${status}`;
  if (status >= 400) {
    try {
      const j = JSON.parse(text);
      if (typeof j.error?.code !== 'string' || typeof j.error?.message !== 'string') return `bad error body ${status}`;
    } catch {
      return `bad error body ${status}`;
    }
  }
  // The path the server saw: fetch resolves dot segments (`/v1/../x` is sent as `/x`).
  const seen = new URL(path, 'http://fuzz.invalid').pathname;
  const apiPath = /^\/v1(\/|$|\?)/i.test(seen);
  if (apiPath && status !== 204 && status !== 304 && !/^(application\/json|text\/event-stream)/.test(contentType ?? '')) return `not JSON (${contentType}) ${status}`;
  return null;
}

describe('api fuzz', () => {
  let h: ApiHarness;
  let viewerToken: string;
  let jwt: string;
  let joinToken: string;
  let image: string;
  let sentTotal = 0;
  const seed = Number(process.env.BERTH_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));

  beforeAll(async () => {
    process.stdout.write(`api fuzz seed: ${seed} (BERTH_FUZZ_SEED=${seed} to reproduce)\n`);
    h = await startApi('berth_api_fuzz');
    const repo = uniqueRepo('fuzz');
    await pushWebImage(repo, 'v1', 'fuzz');
    image = `${REGISTRY}/${repo}:v1`;
    const admin = client(h.base, { token: h.adminToken });
    expect((await admin('POST', '/v1/services', { name: 'web', image })).status).toBe(201);
    viewerToken = (await admin('POST', '/v1/tokens', { name: 'v', role: 'viewer' })).body.token;
    joinToken = (await admin('POST', '/v1/nodes/join-tokens', { description: 'fuzz' })).body.token;
    jwt = (await client(h.base)('POST', '/v1/auth/login', { email: h.adminEmail, password: h.adminPassword })).body.accessToken;
  });
  afterAll(async () => {
    await h?.close();
  });

  it('every operation: null, NUL, control characters, prototype keys and encoded slashes in every field and parameter', async () => {
    const doc = (await client(h.base)('GET', '/docs-json')).body as OpenApiDoc;
    const UUID = '7b6f3c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f';
    type Auth = 'admin' | 'jwt' | 'join' | 'none';
    interface Op {
      auth?: Auth;
      params?: Record<string, string>;
      query?: Record<string, string>;
      body?: Record<string, unknown>;
    }
    const serviceConfig = {
      port: 8080,
      env: { A: 'b' },
      command: ['sh', '-c', 'echo hi'],
      resources: { cpuMillis: 100, memoryMiB: 64, pids: 64 },
      restartPolicy: { policy: 'on-failure', maxRetries: 3 },
      healthCheck: { type: 'http', path: '/', intervalMs: 5000, timeoutMs: 2000, successThreshold: 1, failureThreshold: 3 },
      scaling: { min: 0, max: 2, targetConcurrency: 10 },
      placement: 'spread',
      constraints: { zone: 'a' },
      rollout: { maxSurge: '25%', maxUnavailable: '0' },
    };
    const page = { limit: '5' };
    // Every operation of the API with a request that would succeed (or fail only on state).
    const CATALOGUE: Record<string, Op> = {
      'POST /v1/auth/login': { auth: 'none', body: { email: h.adminEmail, password: h.adminPassword } },
      'GET /v1/auth/whoami': {},
      'POST /v1/projects': { auth: 'jwt', body: { slug: 'fz', name: 'Fuzz' } },
      'GET /v1/projects': { query: page },
      'POST /v1/members': { body: { email: 'member@example.com', role: 'viewer', password: 'password123' } },
      'GET /v1/members': { query: page },
      'DELETE /v1/members/{userId}': { params: { userId: UUID } },
      'POST /v1/tokens': { body: { name: 'fz', role: 'viewer', expiresInDays: 1 } },
      'GET /v1/tokens': { query: page },
      'DELETE /v1/tokens/{id}': { params: { id: UUID } },
      'POST /v1/images': { body: { reference: image } },
      'GET /v1/images': { query: page },
      'GET /v1/images/{id}/versions': { params: { id: UUID }, query: page },
      'GET /v1/images/{id}/tags': { params: { id: UUID }, query: page },
      'PUT /v1/registry-credentials/{registry}': { params: { registry: 'registry.example:5000' }, body: { username: 'u', password: 'p' } },
      'DELETE /v1/registry-credentials/{registry}': { params: { registry: 'registry.example:5000' } },
      'GET /v1/registry-credentials': { query: page },
      'POST /v1/services': { body: { name: 'fzsvc', image, ...serviceConfig } },
      'GET /v1/services': { query: page },
      'GET /v1/services/{name}': { params: { name: 'web' } },
      'PATCH /v1/services/{name}': { params: { name: 'web' }, body: serviceConfig },
      'DELETE /v1/services/{name}': { params: { name: 'gone' } },
      'POST /v1/services/{name}/deployments': { params: { name: 'web' }, body: { image } },
      'POST /v1/services/{name}/rollback': { params: { name: 'web' }, body: { revision: 1 } },
      'PUT /v1/services/{name}/scale': { params: { name: 'web' }, body: { min: 0, max: 2, targetConcurrency: 10, replicas: 1 } },
      'GET /v1/services/{name}/revisions': { params: { name: 'web' }, query: page },
      'GET /v1/services/{name}/revisions/diff': { params: { name: 'web' }, query: { from: '1', to: '1' } },
      'GET /v1/services/{name}/revisions/{number}': { params: { name: 'web', number: '1' } },
      'GET /v1/services/{name}/replicas': { params: { name: 'web' }, query: page },
      'GET /v1/services/{name}/logs': { params: { name: 'web' }, query: { tail: '5', follow: '0' } },
      'GET /v1/services/{name}/metrics': { params: { name: 'web' }, query: { minutes: '5' } },
      'GET /v1/events': { query: page },
      'GET /v1/services/{name}/events': { params: { name: 'web' }, query: page },
      'GET /v1/nodes': { query: page },
      'POST /v1/nodes/join-tokens': { body: { description: 'fz', ttlSeconds: 3600, nodeName: 'fz-node' } },
      'GET /v1/nodes/join-tokens': { query: page },
      'DELETE /v1/nodes/join-tokens/{id}': { params: { id: UUID } },
      'POST /v1/nodes/{name}/revoke': { params: { name: 'fz-other' } },
      'POST /v1/nodes/register': {
        auth: 'join',
        body: { name: 'fz-node', address: '10.0.0.9', labels: { zone: 'a' }, capacity: { cpuMillis: 1000, memoryMiB: 1024, pids: 1000 }, agentVersion: '0.1.0' },
      },
      'POST /v1/nodes/{nodeId}/pull-credentials': { auth: 'join', params: { nodeId: UUID }, body: { replicaId: UUID, registry: '127.0.0.1:5000' } },
      'POST /v1/nodes/{name}/drain': { params: { name: 'fz-node' } },
      'POST /v1/nodes/{name}/undrain': { params: { name: 'fz-node' } },
    };
    const documented = Object.entries(doc.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.filter((k) => !CATALOGUE[k])).toEqual([]); // a new operation must be added to the catalogue
    expect(Object.keys(CATALOGUE).filter((k) => !documented.includes(k))).toEqual([]);

    const resolve = (sc: Schema | undefined): Schema | undefined =>
      sc?.$ref ? doc.components.schemas[sc.$ref.split('/').pop()!] : sc?.allOf?.length === 1 ? resolve(sc.allOf[0]) : sc;
    /** The OpenAPI schema of the property at `path` of an operation's body (undefined when unknown). */
    const propertyAt = (root: Schema | undefined, path: (string | number)[]): Schema | undefined => {
      let sc = resolve(root);
      let prop: Schema | undefined;
      for (const seg of path) {
        prop = typeof seg === 'number' ? sc?.items : (sc?.properties?.[seg] ?? (typeof sc?.additionalProperties === 'object' ? sc.additionalProperties : undefined));
        sc = resolve(prop);
      }
      return prop;
    };

    const STRINGS = ['\u0000', 'a\u0000b', '\u0001', 'a\tb\nc\r', '\u001b[31mred', '\u007f', '\u0085', '\u2028', '\ud800', '\ufeff', '..%2f..%2fetc%2fpasswd', '../../etc/passwd', '%00', ''];
    const SEGMENTS = ['%ED%A0%80', '..%2f..%2fetc%2fpasswd', '..%2F..%2F', '%2f', 'a%2fb', '%2e%2e', '%2e%2e%2f%2e%2e%2f', '..%5c..%5cwin.ini', 'a%00b', '%00', '%01', '%0a', '%0d%0a', '%1b', '%7f', '%ZZ', '%', '%c0%ae%c0%ae%2f', '%ff', '%e2%80%a8', '..', '.'];
    const QUERY_VALUES = ['', 'null', '%00', 'a%00', '%01', '..%2f..%2f', '%ZZ', '-1', '1e309'];

    interface Req {
      op: string;
      method: string;
      path: string;
      auth: Auth;
      raw?: string;
      hasNul: boolean;
      /** null where OpenAPI does not allow it: must be a 4xx. */
      mustFail: boolean;
      idempotencyKey?: string;
    }
    const reqs: Req[] = [];
    const nodes = (v: unknown, path: (string | number)[] = []): { path: (string | number)[]; value: unknown }[] => {
      const out = path.length ? [{ path, value: v }] : [];
      if (Array.isArray(v)) v.forEach((x, i) => out.push(...nodes(x, [...path, i])));
      else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) out.push(...nodes(x, [...path, k]));
      return out;
    };
    const setAt = (body: unknown, path: (string | number)[], value: unknown) => {
      const copy = JSON.parse(JSON.stringify(body));
      let o = copy;
      for (const seg of path.slice(0, -1)) o = o[seg];
      o[path[path.length - 1]!] = value;
      return copy;
    };
    let keySeq = 0;
    for (const [opKey, op] of Object.entries(CATALOGUE)) {
      const [method, template] = opKey.split(' ') as [string, string];
      const auth = op.auth ?? 'admin';
      const build = (params: Record<string, string>, query: Record<string, string>) => {
        let p = template.replace(/\{(\w+)\}/g, (_, n: string) => params[n]!);
        const qs = Object.entries(query).map(([k, v]) => `${k}=${v}`).join('&');
        if (qs) p += `?${qs}`;
        return p;
      };
      const baseParams = Object.fromEntries(Object.entries(op.params ?? {}).map(([k, v]) => [k, encodeURIComponent(v)]));
      const baseQuery = op.query ?? {};
      const basePath = build(baseParams, baseQuery);
      const bodyRaw = op.body ? JSON.stringify(op.body) : undefined;
      const add = (r: Omit<Req, 'op' | 'method' | 'auth'>) => reqs.push({ op: opKey, method, auth, ...r });
      // The request as it should work, with an Idempotency-Key (for the secret checks).
      add({ path: basePath, raw: bodyRaw, hasNul: false, mustFail: false, idempotencyKey: `fz-${keySeq++}` });
      for (const name of Object.keys(op.params ?? {})) {
        for (const seg of SEGMENTS) add({ path: build({ ...baseParams, [name]: seg }, baseQuery), raw: bodyRaw, hasNul: /%00/i.test(seg), mustFail: false });
      }
      for (const name of Object.keys(baseQuery)) {
        if (name === 'follow') continue; // follow=1 streams for up to an hour
        for (const v of QUERY_VALUES) add({ path: build(baseParams, { ...baseQuery, [name]: v }), raw: bodyRaw, hasNul: /%00/i.test(v), mustFail: false });
      }
      add({ path: build(baseParams, { ...baseQuery, __proto__x: '1' }).replace('__proto__x', '__proto__'), raw: bodyRaw, hasNul: false, mustFail: true });
      if (!op.body) continue;
      const schema = doc.paths[template]![method.toLowerCase()]!.requestBody?.content['application/json']?.schema;
      const zodSoon = opKey === 'POST /v1/services' || opKey === 'PATCH /v1/services/{name}';
      for (const n of nodes(op.body)) {
        const nullable = propertyAt(schema, n.path)?.nullable === true;
        add({ path: basePath, raw: JSON.stringify(setAt(op.body, n.path, null)), hasNul: false, mustFail: !nullable && !zodSoon });
        if (typeof n.value === 'string') {
          for (const v of [...STRINGS, `${n.value}\u0000`]) add({ path: basePath, raw: JSON.stringify(setAt(op.body, n.path, v)), hasNul: v.includes('\u0000'), mustFail: false });
        }
        if (n.value && typeof n.value === 'object' && !Array.isArray(n.value)) {
          for (const k of ['__proto__', 'constructor', 'prototype', 'k\u0000']) {
            const raw = JSON.stringify(op.body).replace(JSON.stringify(n.value), `{${JSON.stringify(k)}:{"x":1},${JSON.stringify(n.value).slice(1)}`);
            add({ path: basePath, raw, hasNul: k.includes('\u0000'), mustFail: true });
          }
        }
      }
      for (const k of ['__proto__', 'constructor', 'prototype']) add({ path: basePath, raw: `{${JSON.stringify(k)}:{"isAdmin":true},${bodyRaw!.slice(1)}`, hasNul: false, mustFail: true });
    }

    const tokens: Record<Auth, string | undefined> = { admin: h.adminToken, jwt, join: joinToken, none: undefined };
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    const perOp = new Map<string, number>();
    const one = async (r: Req) => {
      const headers: Record<string, string> = {};
      if (tokens[r.auth]) headers.authorization = `Bearer ${tokens[r.auth]}`;
      if (r.auth === 'jwt') headers['x-berth-project'] = 'default';
      if (r.idempotencyKey) headers['idempotency-key'] = r.idempotencyKey;
      if (r.raw !== undefined) headers['content-type'] = 'application/json';
      const desc = `${r.method} ${r.path} body=${JSON.stringify(r.raw ?? '').slice(0, 160)}`;
      try {
        const res = await fetch(h.base + r.path, { method: r.method, headers, body: r.raw, redirect: 'manual' });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        perOp.set(r.op, (perOp.get(r.op) ?? 0) + 1);
        const problem =
          checkReply(r.path, res.status, res.headers.get('content-type'), text) ??
          (r.hasNul && res.status < 400 ? `${res.status} for a request holding NUL` : null) ??
          (r.mustFail && res.status < 400 ? `${res.status} for null or a prototype key where the API takes none` : null);
        if (problem) failures.push(`${problem} ${desc} → ${text.slice(0, 200)}`);
        else if (res.status < 300 && !doc.paths[r.op.split(' ')[1]!]![r.method.toLowerCase()]![SECRET_RESPONSE_EXTENSION]) {
          let body: unknown = null;
          try {
            body = JSON.parse(text);
          } catch {
            /* SSE */
          }
          if (looksSecret(body)) failures.push(`${r.op} returned a secret but is not marked @SecretResponse: ${desc}`);
        }
      } catch (e) {
        failures.push(`transport error ${(e as Error).message} ${desc}`);
      }
    };
    const CONCURRENCY = 16;
    for (let i = 0; i < reqs.length; i += CONCURRENCY) await Promise.all(reqs.slice(i, i + CONCURRENCY).map(one));
    sentTotal += reqs.length;
    process.stdout.write(`api fuzz (systematic): ${reqs.length} requests over ${perOp.size} operations, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}\n`);
    expect([...perOp.keys()].sort()).toEqual(Object.keys(CATALOGUE).sort());
    if (failures.length) throw new Error(`${failures.length} failures:\n${failures.slice(0, 30).join('\n')}`);
  });

  it(`survives ${REQUESTS} malformed requests without a 5xx`, async () => {
    const rnd = mulberry32(seed);
    /** encodeURIComponent, which throws on an unpaired surrogate: that one is sent as its (invalid) UTF-8 bytes. */
    const encode = (x: string) =>
      x
        .split(/([\ud800-\udbff][\udc00-\udfff]|[\ud800-\udfff])/)
        .map((part) => (part.length === 1 && /[\ud800-\udfff]/.test(part) ? '%ED%A0%80' : encodeURIComponent(part)))
        .join('');
    const int = (n: number) => Math.floor(rnd() * n);
    const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
    const junkString = () =>
      pick([
        '',
        ' ',
        'web',
        'WEB',
        '-x-',
        'a'.repeat(64),
        'a'.repeat(5000),
        '../../etc/passwd',
        '%00',
        '%ZZ',
        '%2e%2e%2f',
        'ünïcödé',
        '😀',
        '\u0000',
        'a\u0000b',
        '\u0001\u0002\u001f',
        '\t\r\n',
        '\u001b[0m',
        '\u007f',
        '\ud800',
        '..%2f..%2f',
        'null',
        '1e309',
        '-1',
        '0',
        '9999999999999999999999',
        "'; drop table \"Service\"; --",
        '<script>',
        '{"a":1}',
        'sha256:' + 'a'.repeat(64),
        '7b6f3c1e-1d2a-4c3b-9e8f-0a1b2c3d4e5f',
        '__proto__',
        'constructor',
        `${REGISTRY}/nope:v1`,
        image,
        'brt_' + 'x'.repeat(43),
      ]);
    const junkValue = (depth = 0): unknown => {
      switch (int(depth > 3 ? 6 : 9)) {
        case 0:
          return null;
        case 1:
          return pick([true, false]);
        case 2:
          return pick([0, -1, 1, 1.5, 65536, 1e308, -1e308, Number.MAX_SAFE_INTEGER + 2, 2 ** 31]);
        case 3:
        case 4:
          return junkString();
        case 5:
          return undefined;
        case 6:
          return Array.from({ length: int(4) }, () => junkValue(depth + 1));
        default: {
          const o: Record<string, unknown> = {};
          for (let i = int(5); i > 0; i--) o[pick(FIELDS)] = junkValue(depth + 1);
          return o;
        }
      }
    };
    const FIELDS = [
      'name', 'image', 'tag', 'port', 'env', 'command', 'resources', 'cpuMillis', 'memoryMiB', 'pids', 'restartPolicy', 'policy',
      'maxRetries', 'healthCheck', 'type', 'path', 'intervalMs', 'scaling', 'min', 'max', 'targetConcurrency', 'replicas',
      'placement', 'constraints', 'rollout', 'maxSurge', 'revision', 'reference', 'email', 'password', 'role', 'slug',
      'username', 'capacity', 'labels', 'address', 'agentVersion', 'expiresInDays', '__proto__', 'constructor',
    ] as const;
    const validish = (): Record<string, unknown> => {
      const base: Record<string, unknown> = {
        name: 'svc' + int(50),
        image: pick([image, `${REGISTRY}/nope:v1`, junkString()]),
        port: 8080,
        env: { A: 'b' },
        resources: { cpuMillis: 100, memoryMiB: 64, pids: 64 },
        restartPolicy: { policy: 'always' },
        healthCheck: { type: 'http', path: '/' },
        scaling: { min: 0, max: 2 },
        min: 0,
        max: 2,
        revision: 1,
        reference: image,
        email: 'a@b.co',
        password: 'password1',
        role: 'viewer',
        slug: 'p' + int(100),
        username: 'u',
      };
      for (let i = int(4) + 1; i > 0; i--) {
        const k = pick(Object.keys(base));
        if (rnd() < 0.3) delete base[k];
        else base[k] = junkValue(1);
      }
      if (rnd() < 0.3) base[pick(FIELDS)] = junkValue();
      return base;
    };
    const seg = () => {
      const r = rnd();
      if (r < 0.4) return pick(['web', 'ghost', '1', 'worker-1', '127.0.0.1:5000', 'docker.io']);
      if (r < 0.6) return pick(['..%2f..%2fetc%2fpasswd', '..%2F', 'a%2fb', '%2e%2e%2f', '%00', 'a%00', '%01', '%0a', '%1f', '%7f', '%ZZ', '%', '%c0%af', '..']);
      return encode(junkString()).slice(0, 300);
    };
    const PATHS: (() => string)[] = [
      () => '/v1/services',
      () => `/v1/services/${seg()}`,
      () => `/v1/services/${seg()}/deployments`,
      () => `/v1/services/${seg()}/rollback`,
      () => `/v1/services/${seg()}/scale`,
      () => `/v1/services/${seg()}/revisions`,
      () => `/v1/services/web/revisions/${seg()}`,
      () => `/v1/services/web/revisions/diff?from=${seg()}&to=${seg()}`,
      () => `/v1/services/${seg()}/replicas`,
      () => `/v1/services/${seg()}/events`,
      () => `/v1/services/web/logs?tail=${seg()}&follow=0`,
      () => '/v1/images',
      () => `/v1/images/${seg()}/versions`,
      () => `/v1/images/${seg()}/tags`,
      () => '/v1/projects',
      () => '/v1/members',
      () => `/v1/members/${seg()}`,
      () => '/v1/tokens',
      () => `/v1/tokens/${seg()}`,
      () => `/v1/registry-credentials/${seg()}`,
      () => '/v1/events',
      () => '/v1/nodes',
      () => '/v1/nodes/register',
      () => '/v1/nodes/join-tokens',
      () => `/v1/nodes/${seg()}/drain`,
      () => '/v1/auth/login',
      () => `/${seg()}`,
      () => `/v1/${seg()}/${seg()}`,
    ];
    const QUERY = () => (rnd() < 0.3 ? `${pick(['?', '&'])}${pick(['limit', 'cursor', 'project', 'x', 'limit[]', 'follow'])}=${encode(junkString()).slice(0, 100)}` : '');

    const failures: string[] = [];
    let sent = 0;
    const statuses = new Map<number, number>();
    const one = async () => {
      const method = pick(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'POST', 'POST']);
      let path = pick(PATHS)() + QUERY();
      if (!path.includes('?')) path = path.replace('&', '?');
      const headers: Record<string, string> = {};
      const auth = int(6);
      if (auth === 0) headers.authorization = `Bearer ${h.adminToken}`;
      else if (auth === 1) headers.authorization = `Bearer ${viewerToken}`;
      else if (auth === 2) headers.authorization = `Bearer ${jwt}`;
      else if (auth === 3) headers.authorization = pick(['Bearer', 'Bearer ', 'Basic Zm9vOmJhcg==', `Bearer ${junkString()}`.replace(/[^\x20-\x7e]/g, 'x'), 'bearer brt_abc', `Bearer ${jwt.slice(0, -3)}abc`]);
      if (rnd() < 0.3) headers['x-berth-project'] = pick(['default', 'acme', 'Default', '-', 'a'.repeat(70), 'x y']);
      if (rnd() < 0.2) headers['idempotency-key'] = pick(['k1', 'k2', 'a'.repeat(300), ' ', 'ünï'.replace(/[^\x20-\x7e]/g, '?')]);
      let body: string | Buffer | undefined;
      const kind = int(8);
      if (method !== 'GET' && method !== 'DELETE') {
        headers['content-type'] = pick(['application/json', 'application/json', 'application/json; charset=utf-8', 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1', 'application/merge-patch+json']);
        if (kind <= 3) body = JSON.stringify(validish());
        else if (kind === 4) body = JSON.stringify(junkValue());
        else if (kind === 5) body = pick(['{', '{"a":}', '[', 'nul', '{"a":1}}', '\u0000', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}', '"str"', '123', 'null']);
        else if (kind === 6) body = Buffer.from(Array.from({ length: int(200) }, () => int(256)));
        else body = JSON.stringify({ env: Object.fromEntries(Array.from({ length: int(400) }, (_, i) => [`K${i}`, 'v'.repeat(int(100))])) });
      }
      const desc = `${method} ${path} auth=${auth} body=${String(body ?? '').slice(0, 120)}`;
      try {
        const res = await fetch(h.base + path, { method, headers, body, redirect: 'manual' });
        const text = await res.text();
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
        const problem = checkReply(path, res.status, res.headers.get('content-type'), text);
        if (problem) failures.push(`${problem} ${desc} → ${text.slice(0, 300)}`);
      } catch (e) {
        failures.push(`transport error ${(e as Error).message} ${desc}`);
      }
      sent++;
    };

    const CONCURRENCY = 16;
    for (let i = 0; i < REQUESTS; i += CONCURRENCY) {
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, REQUESTS - i) }, one));
    }
    sentTotal += sent;
    process.stdout.write(`api fuzz (random): ${sent} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}\n`);
    expect(sent).toBe(REQUESTS);
    if (failures.length) throw new Error(`seed ${seed}: ${failures.length} failures:\n${failures.slice(0, 20).join('\n')}`);
    // The api still answers afterwards (the fuzz may legitimately have deleted `web` with the admin token).
    expect((await client(h.base, { token: h.adminToken })('GET', '/v1/services')).status).toBe(200);
    expect((await client(h.base)('GET', '/readyz')).status).toBe(200);
  });

  it('sent at least 3000 requests, and the idempotency table holds no secret', async () => {
    expect(sentTotal).toBeGreaterThanOrEqual(3000);
    const pg = new PgClient({ connectionString: h.config.DATABASE_URL });
    await pg.connect();
    try {
      const { rows } = await pg.query<{ response: string }>(`select response::text as response from "IdempotencyKey"`);
      expect(rows.length).toBeGreaterThan(0);
      expect(rows.filter((r) => /b[rj]t_[A-Za-z0-9_-]{20,}|"(token|accessToken|password)":/.test(r.response))).toEqual([]);
    } finally {
      await pg.end();
    }
  });
});
