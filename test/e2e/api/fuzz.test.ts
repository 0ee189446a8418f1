/**
 * Randomised malformed requests against the real api: zero 5xx allowed, and every error carries
 * the common body. Seeded (BERTH_FUZZ_SEED to reproduce; the seed is printed).
 */
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

describe('api fuzz', () => {
  let h: ApiHarness;
  let viewerToken: string;
  let jwt: string;
  let image: string;
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
    jwt = (await client(h.base)('POST', '/v1/auth/login', { email: h.adminEmail, password: h.adminPassword })).body.accessToken;
  });
  afterAll(async () => {
    await h?.close();
  });

  it(`survives ${REQUESTS} malformed requests without a 5xx`, async () => {
    const rnd = mulberry32(seed);
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
    const seg = () => (rnd() < 0.5 ? pick(['web', 'ghost', '1', 'worker-1', '127.0.0.1:5000', 'docker.io']) : encodeURIComponent(junkString()).slice(0, 300));
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
    const QUERY = () => (rnd() < 0.3 ? `${pick(['?', '&'])}${pick(['limit', 'cursor', 'project', 'x', 'limit[]', 'follow'])}=${encodeURIComponent(junkString()).slice(0, 100)}` : '');

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
        if (res.status >= 500) failures.push(`${res.status} ${desc} → ${text.slice(0, 300)}`);
        else if (res.status >= 400) {
          let ok = false;
          try {
            const j = JSON.parse(text);
            ok = typeof j.error?.code === 'string' && typeof j.error?.message === 'string';
          } catch {
            ok = false;
          }
          if (!ok) failures.push(`bad error body ${res.status} ${desc} → ${text.slice(0, 300)}`);
        }
      } catch (e) {
        failures.push(`transport error ${(e as Error).message} ${desc}`);
      }
      sent++;
    };

    const CONCURRENCY = 16;
    for (let i = 0; i < REQUESTS; i += CONCURRENCY) {
      await Promise.all(Array.from({ length: Math.min(CONCURRENCY, REQUESTS - i) }, one));
    }
    process.stdout.write(`api fuzz: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}\n`);
    expect(sent).toBeGreaterThanOrEqual(2000);
    if (failures.length) throw new Error(`seed ${seed}: ${failures.length} failures:\n${failures.slice(0, 20).join('\n')}`);
    // The api still answers afterwards (the fuzz may legitimately have deleted `web` with the admin token).
    expect((await client(h.base, { token: h.adminToken })('GET', '/v1/services')).status).toBe(200);
    expect((await client(h.base)('GET', '/readyz')).status).toBe(200);
  });
});
