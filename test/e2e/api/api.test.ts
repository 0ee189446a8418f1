import crypto from 'node:crypto';
import { EventOutSchema, ImageSummarySchema, RedisKey } from '@berth/contracts';
import { client, expectError, reconcileJobOf, startApi, type ApiHarness, type Client } from './helpers/api-harness';
import { pushWebImage, REGISTRY, uniqueRepo } from './helpers/images';
import { makeLayer, pushImage } from '../../integration/oci/helpers/image-builder';
import { startHtpasswdRegistry } from '../../integration/oci/helpers/servers';

jest.setTimeout(60_000);

describe('control-plane api (real Postgres, Redis, registry)', () => {
  let h: ApiHarness;
  let admin: Client; // operator project `default`, admin token
  let acmeAdmin: Client;
  let deployer: Client;
  let viewer: Client;
  let other: Client; // deployer of project `other`
  let tokens: Record<string, string>;
  const repo = uniqueRepo('web');
  const img = (tag: string) => `${REGISTRY}/${repo}:${tag}`;
  let v1: string;
  let v2: string;

  beforeAll(async () => {
    // Some tests run registries of their own on random loopback ports: allow loopback.
    h = await startApi('berth_api_e2e', { BERTH_REGISTRY_ALLOW_PRIVATE: '127.0.0.0/8' });
    v1 = (await pushWebImage(repo, 'v1', 'one')).digest;
    v2 = (await pushWebImage(repo, 'v2', 'two')).digest;
    await pushWebImage(repo, 'v3', 'three');
    admin = client(h.base, { token: h.adminToken });
    const login = await client(h.base)('POST', '/v1/auth/login', { email: h.adminEmail, password: h.adminPassword });
    expect(login.status).toBe(200);
    const jwt = login.body.accessToken as string;
    const user = client(h.base, { token: jwt });
    expect((await user('POST', '/v1/projects', { slug: 'acme', name: 'Acme' })).status).toBe(201);
    expect((await user('POST', '/v1/projects', { slug: 'other' })).status).toBe(201);
    tokens = {};
    for (const [project, role] of [
      ['acme', 'admin'],
      ['acme', 'deployer'],
      ['acme', 'viewer'],
      ['other', 'deployer'],
    ] as const) {
      const r = await user('POST', '/v1/tokens', { name: `${project}-${role}`, role }, { headers: { 'x-berth-project': project } });
      expect(r.status).toBe(201);
      expect(r.body.token).toMatch(/^brt_[A-Za-z0-9_-]{43}$/);
      tokens[`${project}-${role}`] = r.body.token;
    }
    acmeAdmin = client(h.base, { token: tokens['acme-admin'] });
    deployer = client(h.base, { token: tokens['acme-deployer'] });
    viewer = client(h.base, { token: tokens['acme-viewer'] });
    other = client(h.base, { token: tokens['other-deployer'] });
  });
  afterAll(async () => {
    await h?.close();
  });

  const createWeb = (name: string, extra: Record<string, unknown> = {}) =>
    deployer('POST', '/v1/services', { name, image: img('v1'), port: 8080, ...extra });

  describe('authentication', () => {
    it('401 without a token, with a bad API token, with a bad JWT', async () => {
      expectError(await client(h.base)('GET', '/v1/services'), 401, 'UNAUTHENTICATED', /authentication required/);
      expectError(await client(h.base, { token: 'brt_nope' })('GET', '/v1/services'), 401, 'UNAUTHENTICATED', /API token is invalid/);
      expectError(await client(h.base, { token: 'eyJ.bad.jwt' })('GET', '/v1/services'), 401, 'UNAUTHENTICATED', /login token/);
      expectError(await client(h.base)('GET', '/v1/services', undefined, { headers: { authorization: 'Basic abc' } }), 401, 'UNAUTHENTICATED');
    });

    it('login refuses a wrong password and the JWT needs a project the user belongs to', async () => {
      expectError(await client(h.base)('POST', '/v1/auth/login', { email: h.adminEmail, password: 'wrong' }), 401, 'UNAUTHENTICATED', /email or password/);
      const login = await client(h.base)('POST', '/v1/auth/login', { email: h.adminEmail, password: h.adminPassword });
      expect(login.body.expiresIn).toBe(900);
      const jwt = client(h.base, { token: login.body.accessToken });
      expectError(await jwt('GET', '/v1/services'), 400, 'VALIDATION', /X-Berth-Project/);
      expect((await jwt('GET', '/v1/services?project=acme')).status).toBe(200);
      expect((await jwt('GET', '/v1/services', undefined, { headers: { 'x-berth-project': 'acme' } })).status).toBe(200);
      expectError(await jwt('GET', '/v1/services?project=nope'), 404, 'NOT_FOUND', /project 'nope' not found/);
      const mine = await jwt('GET', '/v1/projects');
      expect(mine.body.items.map((p: any) => p.slug).sort()).toEqual(['acme', 'default', 'other']);
    });

    it('the bootstrap is idempotent: a second run creates nothing', async () => {
      const { bootstrapAdmin } = await import('../../../apps/api/src/bootstrap/bootstrap-admin');
      const { UserRepository } = await import('@berth/db');
      expect(await bootstrapAdmin(h.app.get(UserRepository), { email: 'x@example.com', password: 'whatever1' })).toBeNull();
      expect(await h.prisma.client.user.count()).toBe(1);
    });
  });

  describe('roles and isolation', () => {
    beforeAll(async () => {
      expect((await createWeb('iso')).status).toBe(201);
    });

    it('viewer reads but cannot deploy, create or scale (403)', async () => {
      expect((await viewer('GET', '/v1/services/iso')).status).toBe(200);
      const e = expectError(await viewer('POST', '/v1/services/iso/deployments', { image: img('v2') }), 403, 'FORBIDDEN', /needs deployer/);
      expect(e.details).toEqual({ role: 'viewer', required: 'deployer' });
      expectError(await viewer('POST', '/v1/services', { name: 'x', image: img('v1') }), 403, 'FORBIDDEN');
      expectError(await viewer('PUT', '/v1/services/iso/scale', { min: 1, max: 2 }), 403, 'FORBIDDEN');
    });

    it('deployer cannot manage tokens, credentials or delete services; admin can', async () => {
      expectError(await deployer('POST', '/v1/tokens', { name: 't', role: 'viewer' }), 403, 'FORBIDDEN');
      expectError(await deployer('GET', '/v1/registry-credentials'), 403, 'FORBIDDEN');
      expectError(await deployer('DELETE', '/v1/services/iso'), 403, 'FORBIDDEN');
      expect((await acmeAdmin('GET', '/v1/tokens')).status).toBe(200);
    });

    it("a token of another project gets 404 for acme's service, never its data", async () => {
      const r = await other('GET', '/v1/services/iso');
      expectError(r, 404, 'NOT_FOUND');
      expect(r.text).not.toContain('acme');
      expectError(await other('GET', '/v1/services/iso', undefined, { headers: { 'x-berth-project': 'acme' } }), 404, 'NOT_FOUND', /project 'acme' not found/);
      expectError(await other('GET', '/v1/services/iso/revisions'), 404, 'NOT_FOUND');
      expectError(await other('POST', '/v1/services/iso/deployments', { image: img('v2') }), 404, 'NOT_FOUND');
      expectError(await other('PUT', '/v1/services/iso/scale', { min: 0, max: 1 }), 404, 'NOT_FOUND');
      expect((await other('GET', '/v1/services')).body.items).toEqual([]);
      expect((await other('GET', '/v1/events')).body.items.every((e: any) => e.serviceId === null)).toBe(true);
    });
  });

  describe('deploy, pin, rollback, scale', () => {
    let serviceId: string;

    it('create resolves the tag and pins its digest as revision 1, and enqueues reconcile', async () => {
      const r = await createWeb('web', { env: { GREETING: 'hi' }, resources: { memoryMiB: 128 } });
      expect(r.status).toBe(201);
      serviceId = r.body.id;
      expect(r.body.activeRevision).toMatchObject({ number: 1, tag: 'v1', digest: v1, reason: 'CREATE', status: 'PENDING' });
      expect(r.body.url).toBe('http://web.acme.localhost:8000');
      expect(r.body.spec).toMatchObject({
        port: 8080,
        env: { GREETING: 'hi' },
        resources: { cpuMillis: 250, memoryMiB: 128, pids: 256 },
        restartPolicy: { policy: 'always', maxRetries: 0 },
        scaling: { min: 1, max: 1, targetConcurrency: 100 },
        healthCheck: { type: 'tcp' },
      });
      expect(r.body.replicas).toEqual({ desired: 1, ready: 0, byState: {} });
      const job = await reconcileJobOf(h, serviceId);
      expect(job?.data).toEqual({ kind: 'reconcile', serviceId, cause: 'create' });
    });

    it('deploy by tag pins the digest; a tag moved in the registry later does not change the running revision', async () => {
      const d = await deployer('POST', '/v1/services/web/deployments', { image: img('v2') });
      expect(d.status).toBe(201);
      expect(d.body.revision).toMatchObject({ number: 2, digest: v2, reason: 'DEPLOY', createdBy: 'token:acme-deployer' });
      expect(d.body.revision.config.image).toEqual({ reference: img('v2'), digest: v2 });

      const moved = (await pushWebImage(repo, 'v2', 'two, moved')).digest;
      expect(moved).not.toBe(v2);
      const s = await viewer('GET', '/v1/services/web');
      expect(s.body.activeRevision).toMatchObject({ number: 2, digest: v2 });
      const revs = await viewer('GET', '/v1/services/web/revisions');
      expect(revs.body.items.map((r: any) => [r.number, r.digest])).toEqual([
        [2, v2],
        [1, v1],
      ]);
      // Deploying the tag again resolves it now.
      const again = await deployer('POST', '/v1/services/web/deployments', { tag: 'v2' });
      expect(again.body.revision).toMatchObject({ number: 3, digest: moved, tag: 'v2' });
    });

    /** No scheduler runs here: play its part and mark revisions as having reached ACTIVE once. */
    const activated = (numbers: number[]) =>
      h.prisma.client.revision.updateMany({ where: { serviceId, number: { in: numbers } }, data: { status: 'SUPERSEDED', activatedAt: new Date() } });

    it('rollback to a tag reuses the pinned digest of the revision that ran it, as a new revision', async () => {
      // Revision 1 never became active yet: a rollback to it is refused with the reason, unless forced.
      const refused = await deployer('POST', '/v1/services/web/rollback', { tag: 'v1' });
      expectError(refused, 409, 'CONFLICT', /revision 1 never became active \(still PENDING\).*force: true/);
      expect(refused.body.error.details).toMatchObject({ revision: 1, status: 'PENDING', forceRequired: true });
      expectError(await deployer('POST', '/v1/services/web/rollback', {}), 409, 'CONFLICT', /no earlier revision that reached ACTIVE/);
      await activated([1, 2, 3]);
      const r = await deployer('POST', '/v1/services/web/rollback', { tag: 'v1' });
      expect(r.status).toBe(201);
      expect(r.body.rolledBackTo).toBe(1);
      expect(r.body.revision).toMatchObject({ number: 4, digest: v1, reason: 'ROLLBACK' });
      expect(r.body.service.activeRevision.number).toBe(4);
    });

    it('rollback to a named revision and to "the previous one"', async () => {
      const r = await deployer('POST', '/v1/services/web/rollback', { revision: 2 });
      expect(r.body.revision).toMatchObject({ number: 5, digest: v2, reason: 'ROLLBACK' });
      // Revision 4 (v1) never became active: naming it is refused …
      expectError(await deployer('POST', '/v1/services/web/rollback', { revision: 4 }), 409, 'CONFLICT', /revision 4 never became active/);
      await activated([4]);
      // … once it has, it is the previous one.
      const prev = await deployer('POST', '/v1/services/web/rollback', {});
      expect(prev.body.revision).toMatchObject({ number: 6, digest: v1 });
      expect(prev.body.rolledBackTo).toBe(4);
      expectError(await deployer('POST', '/v1/services/web/rollback', { revision: 99 }), 404, 'NOT_FOUND', /revision 99/);
      expectError(await deployer('POST', '/v1/services/web/rollback', { tag: 'never' }), 404, 'NOT_FOUND', /tag 'never'/);
      const job = await reconcileJobOf(h, serviceId);
      expect(job?.data.serviceId).toBe(serviceId);
    });

    it('scaling-only changes bump the generation without a revision; env changes create one; diff shows them', async () => {
      const before = await viewer('GET', '/v1/services/web');
      const p = await deployer('PATCH', '/v1/services/web', { scaling: { max: 3 } });
      expect(p.status).toBe(200);
      expect(p.body.revision).toBeNull();
      expect(p.body.service.generation).toBe(before.body.generation + 1);
      expect(p.body.service.activeRevision.number).toBe(6);

      const e = await deployer('PATCH', '/v1/services/web', { env: { GREETING: 'hello', NEW: '1' } });
      expect(e.body.revision).toMatchObject({ number: 7, reason: 'CONFIG', digest: v1 });
      const diff = await viewer('GET', '/v1/services/web/revisions/diff?from=6&to=7');
      expect(diff.status).toBe(200);
      expect(diff.body.changes).toEqual(
        expect.arrayContaining([
          { field: 'env.GREETING', from: 'hi', to: 'hello' },
          { field: 'env.NEW', from: null, to: '1' },
        ]),
      );
      const d2 = await viewer('GET', '/v1/services/web/revisions/diff?from=1&to=2');
      expect(d2.body.changes).toEqual(expect.arrayContaining([{ field: 'image.digest', from: v1, to: v2 }]));
    });

    it('PUT scale sets min/max/replicas and rejects replicas outside [min, max]', async () => {
      const r = await deployer('PUT', '/v1/services/web/scale', { min: 0, max: 5, replicas: 3, targetConcurrency: 20 });
      expect(r.status).toBe(200);
      expect(r.body.replicas.desired).toBe(3);
      expect(r.body.spec.scaling).toEqual({ min: 0, max: 5, targetConcurrency: 20 });
      expect(r.body.scaling).toMatchObject({ min: 0, max: 5, floorFromReplicas: false, summary: expect.stringContaining('without load it goes back to zero') });
      const e = expectError(await deployer('PUT', '/v1/services/web/scale', { min: 2, max: 4, replicas: 9 }), 400, 'VALIDATION', /replicas/);
      expect(e.details.field).toBe('replicas');
      expectError(await deployer('PUT', '/v1/services/web/scale', { min: 3, max: 1 }), 400, 'VALIDATION', /min/);
      const job = await reconcileJobOf(h, serviceId);
      expect(job?.data.kind).toBe('reconcile');
    });

    it('the timeline records who did what from which token', async () => {
      const ev = await viewer('GET', `/v1/services/web/events?limit=100`);
      const types = ev.body.items.map((e: any) => e.type);
      expect(types).toEqual(expect.arrayContaining(['service.created', 'service.deployed', 'service.rolled_back', 'service.updated', 'service.scaled']));
      const deployed = ev.body.items.find((e: any) => e.type === 'service.deployed');
      expect(deployed.actor).toBe('token:acme-deployer');
      expect(deployed.tokenId).toEqual(expect.any(String));
      // newest first, paginated
      const page1 = await viewer('GET', '/v1/services/web/events?limit=2');
      expect(page1.body.items).toHaveLength(2);
      const page2 = await viewer('GET', `/v1/services/web/events?limit=2&cursor=${page1.body.nextCursor}`);
      expect(Number(page2.body.items[0].id)).toBeLessThan(Number(page1.body.items[1].id));

      // The project's timeline names each event's service, so `berth events` can show a SERVICE column.
      const all = await viewer('GET', '/v1/events?limit=100');
      expect(all.status).toBe(200);
      for (const e of all.body.items) EventOutSchema.parse(e);
      const web = all.body.items.filter((e: any) => e.serviceId === deployed.serviceId);
      expect(web.length).toBeGreaterThan(0);
      expect(web.every((e: any) => e.service === 'web')).toBe(true);
      expect(ev.body.items.every((e: any) => e.service === 'web')).toBe(true);
    });

    it('after an automatic rollback, a deploy and the detail start from what runs, not from the failed change', async () => {
      await createWeb('autorb', { command: ['httpd', '-f', '-p', '8080', '-h', '/www'] });
      const bad = await deployer('PATCH', '/v1/services/autorb', { command: ['sh', '-c', 'exit 3'] });
      expect(bad.body.revision.number).toBe(2);
      // The scheduler's automatic rollback: revision 2 FAILED, the service back on revision 1 (only activeRevisionId moves).
      const svc = await h.prisma.client.service.findFirstOrThrow({ where: { name: 'autorb', deletedAt: null }, include: { revisions: true } });
      const r1 = svc.revisions.find((r) => r.number === 1)!;
      await h.prisma.client.revision.update({ where: { id: svc.revisions.find((r) => r.number === 2)!.id }, data: { status: 'FAILED', statusReason: 'crash-looping' } });
      await h.prisma.client.service.update({ where: { id: svc.id }, data: { activeRevisionId: r1.id } });
      expect((await viewer('GET', '/v1/services/autorb')).body.spec.command).toEqual(['httpd', '-f', '-p', '8080', '-h', '/www']);
      const d = await deployer('POST', '/v1/services/autorb/deployments', { image: img('v2') });
      expect(d.status).toBe(201);
      expect(d.body.revision.config.command).toEqual(['httpd', '-f', '-p', '8080', '-h', '/www']);
      expect(d.body.service.spec.command).toEqual(['httpd', '-f', '-p', '8080', '-h', '/www']);
      await acmeAdmin('DELETE', '/v1/services/autorb');
    });

    it('delete marks it deleted, enqueues reconcile and keeps the history', async () => {
      expect((await acmeAdmin('DELETE', '/v1/services/web')).status).toBe(204);
      expectError(await viewer('GET', '/v1/services/web'), 404, 'NOT_FOUND');
      const row = await h.prisma.client.service.findUnique({ where: { id: serviceId } });
      expect(row).toMatchObject({ desiredReplicas: 0 });
      expect(row!.deletedAt).toBeInstanceOf(Date);
      expect(await h.prisma.client.revision.count({ where: { serviceId } })).toBe(7);
      const job = await reconcileJobOf(h, serviceId);
      expect(job?.data).toEqual({ kind: 'reconcile', serviceId, cause: expect.any(String) });
      // The name may be taken again (test/e2e/api/reused-name.test.ts); the history stays under ?deleted=true.
      expect((await viewer('GET', '/v1/services/web/revisions?deleted=true')).body.items).toHaveLength(7);
    });
  });

  describe('references: kept as typed, the digest beside them', () => {
    it('a pinned `repo:tag@digest` is stored as `repo:tag` plus the digest, never glued together', async () => {
      const r = await createWeb('pinned', { image: `${img('v1')}@${v1}` });
      expect(r.status).toBe(201);
      expect(r.body.activeRevision).toMatchObject({ image: img('v1'), tag: 'v1', digest: v1 });
      const d = await deployer('POST', '/v1/services/pinned/deployments', { image: `${img('v2')}@${v2}` });
      expect(d.status).toBe(201);
      expect(d.body.revision).toMatchObject({ image: img('v2'), tag: 'v2', digest: v2 });
      expect(d.body.revision.config.image).toEqual({ reference: img('v2'), digest: v2 });
      const revs = await viewer('GET', '/v1/services/pinned/revisions');
      expect(revs.body.items.map((x: any) => [x.image, x.digest])).toEqual([
        [img('v2'), v2],
        [img('v1'), v1],
      ]);
      // Only a digest typed without a tag keeps it: it is the whole reference.
      const bare = await deployer('POST', '/v1/services/pinned/deployments', { image: `${REGISTRY}/${repo}@${v1}` });
      expect(bare.status).toBe(201);
      expect(bare.body.revision).toMatchObject({ image: `${REGISTRY}/${repo}@${v1}`, tag: null, digest: v1 });
      // The pinned digest wins over a tag that has moved on: what runs is what was confirmed.
      const stale = await deployer('POST', '/v1/services/pinned/deployments', { image: `${img('v2')}@${v1}` });
      expect(stale.status).toBe(201);
      expect(stale.body.revision).toMatchObject({ image: img('v2'), digest: v1 });
    });
  });

  describe('idempotency', () => {
    it('same key + same body replays the stored response; a different body is a 409', async () => {
      expect((await createWeb('idem')).status).toBe(201);
      const headers = { 'idempotency-key': 'deploy-123' };
      const a = await deployer('POST', '/v1/services/idem/deployments', { image: img('v2') }, { headers });
      const b = await deployer('POST', '/v1/services/idem/deployments', { image: img('v2') }, { headers });
      expect(a.status).toBe(201);
      expect(b.status).toBe(201);
      expect(b.headers.get('idempotent-replayed')).toBe('true');
      expect(b.body).toEqual(a.body);
      const revs = await viewer('GET', '/v1/services/idem/revisions');
      expect(revs.body.items).toHaveLength(2);
      expectError(await deployer('POST', '/v1/services/idem/deployments', { image: img('v3') }, { headers }), 409, 'CONFLICT', /Idempotency-Key/);
      // Keys are per principal: another token may use the same key.
      const c = await acmeAdmin('POST', '/v1/services/idem/deployments', { image: img('v3') }, { headers });
      expect(c.status).toBe(201);
      expect(c.body.revision.number).toBe(3);
    });

    it('concurrent retries with one key run the request once (the other is replayed or told it is in progress)', async () => {
      const headers = { 'idempotency-key': 'race-1' };
      const rs = await Promise.all([1, 2, 3].map(() => deployer('POST', '/v1/services/idem/deployments', { image: img('v1') }, { headers })));
      for (const r of rs) {
        if (r.status === 409) expect(r.body.error.message).toMatch(/in progress/);
        else expect(r.status).toBe(201);
      }
      expect(rs.some((r) => r.status === 201)).toBe(true);
      const revs = await viewer('GET', '/v1/services/idem/revisions');
      expect(revs.body.items).toHaveLength(4);
      // A failed request releases its key: the same key works after a 4xx.
      expectError(await deployer('POST', '/v1/services/idem/deployments', { image: img('nope') }, { headers: { 'idempotency-key': 'fail-1' } }), 422, 'IMAGE_UNRESOLVABLE');
      expectError(await deployer('POST', '/v1/services/idem/deployments', { image: img('nope') }, { headers: { 'idempotency-key': 'fail-1' } }), 422, 'IMAGE_UNRESOLVABLE');
    });

    it('keys older than the retention are purged', async () => {
      const { IdempotencyJanitor } = await import('../../../apps/api/src/common/idempotency/idempotency-janitor');
      await h.prisma.client.idempotencyKey.updateMany({ where: { key: 'deploy-123' }, data: { createdAt: new Date(Date.now() - 25 * 3600_000) } });
      expect(await h.app.get(IdempotencyJanitor).purge()).toBeGreaterThanOrEqual(1);
      expect(await h.prisma.client.idempotencyKey.count({ where: { key: 'deploy-123' } })).toBe(0);
      expect(await h.prisma.client.idempotencyKey.count({ where: { key: 'race-1' } })).toBe(1);
    });
  });

  describe('bad input: status and error body', () => {
    it('malformed reference → 400 naming the part', async () => {
      const e = expectError(await createWeb('bad1', { image: `${REGISTRY}/Upper/Case:v1` }), 400, 'VALIDATION');
      expect(e.details).toMatchObject({ field: 'image', part: 'repository' });
      const t = expectError(await createWeb('bad2', { image: `${REGISTRY}/${repo}:-bad` }), 400, 'VALIDATION');
      expect(t.details.part).toBe('tag');
      const i = expectError(await deployer('POST', '/v1/images', { reference: 'x@sha256:123' }), 400, 'VALIDATION');
      expect(i.details).toMatchObject({ field: 'reference', part: 'digest' });
    });

    it('unknown tag or repository → 422 with the registry answer', async () => {
      const e = expectError(await createWeb('bad3', { image: img('nope') }), 422, 'IMAGE_UNRESOLVABLE');
      expect(e.details.registryErrors).toEqual(expect.arrayContaining([expect.objectContaining({ code: 'MANIFEST_UNKNOWN' })]));
      expectError(await createWeb('bad4', { image: `${REGISTRY}/berth-api-test/never-pushed:v1` }), 422, 'IMAGE_UNRESOLVABLE');
      expect((await viewer('GET', '/v1/services/bad3')).status).toBe(404);
    });

    it('unreachable registry → 503 with a clear message', async () => {
      expectError(await createWeb('bad5', { image: '127.0.0.1:1/app:v1' }), 503, 'UNAVAILABLE', /registry unreachable/);
    });

    it('validation errors name the field', async () => {
      const e = expectError(await createWeb('bad6', { resources: { cpuMillis: -5 }, surprise: 1 }), 400, 'VALIDATION');
      expect(e.message).toMatch(/resources\.cpuMillis/);
      expect(e.details.fields.map((f: any) => f.field)).toEqual(expect.arrayContaining(['resources.cpuMillis', 'surprise']));
      expectError(await createWeb('Bad_Name'), 400, 'VALIDATION', /name must be a DNS label/);
      expectError(await createWeb('bad7', { env: { 'not valid': 'x' } }), 400, 'VALIDATION', /env/);
      expectError(await createWeb('bad8', { scaling: { min: 3, max: 2 } }), 400, 'VALIDATION', /scaling\.min/);
      expectError(await createWeb('bad9', { healthCheck: { type: 'udp' } }), 400, 'VALIDATION', /healthCheck\.type/);
      expectError(await createWeb('bad10', { resources: { cpu: '250' } }), 400, 'VALIDATION', /resources\.cpu: CPU "250" is 250 CPUs; for millicores write "250m"/);
      expectError(await createWeb('bad11', { resources: { memory: '1 Gigabyte' } }), 400, 'VALIDATION', /resources\.memory: memory unit "Gigabyte" in "1 Gigabyte" is not understood/);
      expectError(await createWeb('bad12', { port: 'x' }), 400, 'VALIDATION', /port must be an integer/);
      expectError(await deployer('GET', '/v1/services?limit=0'), 400, 'VALIDATION', /limit/);
      expectError(await deployer('GET', '/v1/services?cursor=abc'), 400, 'VALIDATION', /cursor/);
    });

    it('malformed JSON → 400, oversized body → 413, non-JSON → 400', async () => {
      expectError(await deployer('POST', '/v1/services', undefined, { raw: '{"name": "x",' }), 400, 'VALIDATION', /malformed JSON/);
      expectError(await deployer('POST', '/v1/services', undefined, { raw: '[1,2]' }), 400, 'VALIDATION', /JSON object/);
      const big = JSON.stringify({ name: 'big', image: img('v1'), env: { A: 'x'.repeat(1_100_000) } });
      expectError(await deployer('POST', '/v1/services', undefined, { raw: big }), 413, 'PAYLOAD_TOO_LARGE');
      expectError(
        await deployer('POST', '/v1/services', undefined, { raw: 'name=x', headers: { 'content-type': 'application/x-www-form-urlencoded' } }),
        400,
        'VALIDATION',
        /Content-Type/,
      );
    });

    it('unknown service, revision, route → 404', async () => {
      expectError(await viewer('GET', '/v1/services/ghost'), 404, 'NOT_FOUND', /service 'ghost'/);
      expectError(await deployer('POST', '/v1/services/ghost/deployments', { image: img('v1') }), 404, 'NOT_FOUND');
      expectError(await viewer('GET', '/v1/services/iso/revisions/42'), 404, 'NOT_FOUND');
      expectError(await viewer('GET', '/v1/services/iso/revisions/abc'), 400, 'VALIDATION');
      expectError(await viewer('GET', '/v1/nope'), 404, 'NOT_FOUND', /no such endpoint/);
      expectError(await acmeAdmin('DELETE', '/v1/tokens/not-a-uuid'), 404, 'NOT_FOUND');
    });
  });

  describe('tokens and registry credentials', () => {
    it('lists tokens without secrets, revokes them, and a revoked token is refused', async () => {
      const created = await acmeAdmin('POST', '/v1/tokens', { name: 'short-lived', role: 'viewer' });
      const list = await acmeAdmin('GET', '/v1/tokens?limit=100');
      expect(list.text).not.toContain(created.body.token);
      expect(list.text).not.toMatch(/tokenHash/);
      const t = client(h.base, { token: created.body.token });
      expect((await t('GET', '/v1/services')).status).toBe(200);
      const row = await h.prisma.client.apiToken.findUnique({ where: { id: created.body.id } });
      expect(row!.lastUsedAt).toBeInstanceOf(Date);
      expect(row!.tokenHash).toMatch(/^[0-9a-f]{64}$/);
      expect((await acmeAdmin('DELETE', `/v1/tokens/${created.body.id}`)).status).toBe(204);
      expectError(await t('GET', '/v1/services'), 401, 'UNAUTHENTICATED', /revoked/);
    });

    it('stores registry credentials encrypted and never returns the secret', async () => {
      const put = await acmeAdmin('PUT', `/v1/registry-credentials/${REGISTRY}`, { username: 'bob', password: 's3cret-p4ss' });
      expect(put.status).toBe(200);
      expect(put.body).toMatchObject({ registry: REGISTRY, username: 'bob' });
      const list = await acmeAdmin('GET', '/v1/registry-credentials');
      expect(list.body.items).toHaveLength(1);
      expect(list.text).not.toContain('s3cret');
      const row = await h.prisma.client.registryCredential.findFirst({ where: { registry: REGISTRY } });
      expect(Buffer.from(row!.secret).toString('utf8')).not.toContain('s3cret');
      // The registry (no auth) still answers with credentials configured: they are decrypted and sent.
      expect((await deployer('POST', '/v1/images', { reference: img('v1') })).status).toBe(201);
      expect((await acmeAdmin('DELETE', `/v1/registry-credentials/${REGISTRY}`)).status).toBe(204);
      expectError(await acmeAdmin('DELETE', `/v1/registry-credentials/${REGISTRY}`), 404, 'NOT_FOUND');
    });
  });

  describe('private registry credentials', () => {
    it('uses the project credentials (decrypted) against a registry with htpasswd auth', async () => {
      const reg = await startHtpasswdRegistry('alice', 'pa55word');
      try {
        const authorization = 'Basic ' + Buffer.from('alice:pa55word').toString('base64');
        const pushed = await pushImage('private/app', 'v1', [await makeLayer([{ name: 'x', content: 'private' }])], { registry: reg.host, authorization });
        const ref = `${reg.host}/private/app:v1`;
        expectError(await deployer('POST', '/v1/images', { reference: ref }), 422, 'IMAGE_UNRESOLVABLE', /refused/);
        expect((await acmeAdmin('PUT', `/v1/registry-credentials/${reg.host}`, { username: 'alice', password: 'wrong' })).status).toBe(200);
        expectError(await deployer('POST', '/v1/images', { reference: ref }), 422, 'IMAGE_UNRESOLVABLE');
        expect((await acmeAdmin('PUT', `/v1/registry-credentials/${reg.host}`, { username: 'alice', password: 'pa55word' })).status).toBe(200);
        const ok = await deployer('POST', '/v1/images', { reference: ref });
        expect(ok.status).toBe(201);
        expect(ok.body.digest).toBe(pushed.digest);
        // Credentials belong to acme only.
        expectError(await other('POST', '/v1/images', { reference: ref }), 422, 'IMAGE_UNRESOLVABLE');
      } finally {
        await reg.close();
      }
    });
  });

  describe('images', () => {
    it('records the version with its layers, size and tag pointer', async () => {
      const r = await deployer('POST', '/v1/images', { reference: img('v3') });
      expect(r.status).toBe(201);
      expect(r.body).toMatchObject({ tag: 'v3', platform: 'linux/amd64', image: { registry: REGISTRY, repository: repo } });
      expect(r.body.totalSize).toBeGreaterThan(0);
      const versions = await viewer('GET', `/v1/images/${r.body.image.id}/versions`);
      const v = versions.body.items.find((x: any) => x.digest === r.body.digest);
      expect(v.tags).toContain('v3');
      expect(v.layers).toHaveLength(1);
      expect(v.layers[0].digest).toMatch(/^sha256:/);
      const tags = await viewer('GET', `/v1/images/${r.body.image.id}/tags`);
      expect(tags.body.items.map((t: any) => t.tag)).toEqual(expect.arrayContaining(['v1', 'v2', 'v3']));
      expect((await other('GET', `/v1/images/${r.body.image.id}/versions`)).status).toBe(404);
    });

    it('the list shows each image\'s newest digests with tags, size and the live services running them', async () => {
      expect((await createWeb('imgused')).status).toBe(201);
      const list = await viewer('GET', '/v1/images');
      expect(list.status).toBe(200);
      for (const i of list.body.items) ImageSummarySchema.parse(i);
      const image = list.body.items.find((i: any) => i.repository === repo);
      const versions = (await viewer('GET', `/v1/images/${image.id}/versions`)).body.items;
      const one = image.recent.find((v: any) => v.digest === v1);
      expect(one.tags).toContain('v1');
      expect(one.size).toBe(versions.find((v: any) => v.digest === v1).totalSize);
      expect(one.size).toBeGreaterThan(versions.find((v: any) => v.digest === v1).layers.reduce((n: number, l: any) => n + l.size, 0));
      expect(one.usedBy).toContainEqual({ service: 'imgused', revision: 1 });
      expect(image.usedBy).toContain('imgused');
      // A deleted service runs nothing: `web` (deleted above) is not listed.
      expect(image.usedBy).not.toContain('web');
      // Newest first.
      const times = image.recent.map((v: any) => Date.parse(v.resolvedAt));
      expect([...times].sort((a, b) => b - a)).toEqual(times);
      expect((await other('GET', '/v1/images')).body.items.find((i: any) => i.id === image.id)).toBeUndefined();
    });
  });

  describe('nodes', () => {
    it('operator admins mint join tokens; agents register; drain/undrain go through the transition table', async () => {
      expectError(await acmeAdmin('POST', '/v1/nodes/join-tokens', {}), 403, 'FORBIDDEN', /operator/);
      const jt = await admin('POST', '/v1/nodes/join-tokens', { description: 'test' });
      expect(jt.status).toBe(201);
      expect(jt.body.token).toMatch(/^bjt_/);
      const agent = client(h.base, { token: jt.body.token });
      const body = { name: 'worker-1', address: '10.0.0.5', labels: { zone: 'a' }, capacity: { cpuMillis: 2000, memoryMiB: 4096, pids: 10000 }, agentVersion: '0.1.0' };
      const reg = await agent('POST', '/v1/nodes/register', body);
      expect(reg.status).toBe(200);
      expect(reg.body).toEqual({
        nodeId: expect.any(String),
        heartbeatIntervalMs: 2000,
        credential: expect.stringMatching(/^bnc_/),
        network: { mode: 'host-gw', clusterCidr: '10.88.0.0/16', podCidr: '10.88.0.0/24', wireguardPort: 51820 },
      });
      const node = client(h.base, { token: reg.body.credential });
      expectError(await client(h.base, { token: 'bjt_wrong' })('POST', '/v1/nodes/register', body), 401, 'UNAUTHENTICATED');
      expectError(await admin('POST', '/v1/nodes/register', body), 401, 'UNAUTHENTICATED', /join token/);

      const nodes = await viewer('GET', '/v1/nodes');
      expect(nodes.body.items).toEqual([
        expect.objectContaining({ name: 'worker-1', status: 'READY', capacity: { cpuMillis: 2000, memoryMiB: 4096, pids: 10000 }, allocated: { cpuMillis: 0, memoryMiB: 0, pids: 0 } }),
      ]);

      // A replica on the node: draining must enqueue a reconcile for its service.
      const svc = await createWeb('on-node');
      await h.prisma.client.replica.create({
        data: { serviceId: svc.body.id, revisionId: (await h.prisma.client.revision.findFirst({ where: { serviceId: svc.body.id } }))!.id, nodeId: reg.body.nodeId, state: 'RUNNING' },
      });
      await h.reconcileQueue.obliterate({ force: true });
      expectError(await acmeAdmin('POST', '/v1/nodes/worker-1/drain'), 403, 'FORBIDDEN');
      const d = await admin('POST', '/v1/nodes/worker-1/drain');
      expect(d.body).toEqual({ name: 'worker-1', status: 'DRAINING' });
      const job = await reconcileJobOf(h, svc.body.id);
      expect(job?.data).toEqual({ kind: 'reconcile', serviceId: svc.body.id, cause: 'node-drain' });
      expect((await admin('POST', '/v1/nodes/worker-1/undrain')).body.status).toBe('READY');
      expectError(await admin('POST', '/v1/nodes/ghost/drain'), 404, 'NOT_FOUND');

      // DOWN cannot drain; a returning DOWN node registers back to READY.
      await h.prisma.client.node.update({ where: { id: reg.body.nodeId }, data: { status: 'DOWN' } });
      expectError(await admin('POST', '/v1/nodes/worker-1/drain'), 409, 'CONFLICT', /DOWN/);
      const back = await node('POST', '/v1/nodes/register', { ...body, address: '10.0.0.6' });
      expect(back.body.nodeId).toBe(reg.body.nodeId);
      const n = await h.prisma.client.node.findUnique({ where: { id: reg.body.nodeId } });
      expect(n).toMatchObject({ status: 'READY', address: '10.0.0.6' });
      const events = await h.prisma.client.event.findMany({ where: { nodeId: reg.body.nodeId }, orderBy: { id: 'asc' } });
      expect(events.map((e) => e.type)).toEqual(['node.registered', 'node.draining', 'node.undrained', 'node.reregistered']);
    });
  });

  describe('pull credentials for agents (private images)', () => {
    it("answers only the agent of the replica's node, only for its image's registry, and 404 when the project has none", async () => {
      const jt = await admin('POST', '/v1/nodes/join-tokens', { description: 'pull-creds' });
      const agent = client(h.base, { token: jt.body.token });
      const capacity = { cpuMillis: 2000, memoryMiB: 4096, pids: 10000 };
      const hereReg = (await agent('POST', '/v1/nodes/register', { name: 'pull-here', address: '10.0.1.5', capacity, agentVersion: '0.1.0' })).body;
      const thereReg = (await agent('POST', '/v1/nodes/register', { name: 'pull-there', address: '10.0.1.6', capacity, agentVersion: '0.1.0' })).body;
      const here = hereReg.nodeId as string;
      const there = thereReg.nodeId as string;
      // Each node asks with its own credential (the join token no longer opens this endpoint).
      const hereNode = client(h.base, { token: hereReg.credential });
      const thereNode = client(h.base, { token: thereReg.credential });
      const svc = await createWeb('private-pull');
      const rev = (await h.prisma.client.revision.findFirst({ where: { serviceId: svc.body.id } }))!;
      const replica = await h.prisma.client.replica.create({ data: { serviceId: svc.body.id, revisionId: rev.id, nodeId: here, state: 'PULLING' } });
      const ask = (nodeId: string, body: Record<string, unknown>, c = hereNode) => c('POST', `/v1/nodes/${nodeId}/pull-credentials`, body);

      // No credentials stored for the project yet: 404, the agent pulls anonymously.
      expectError(await ask(here, { replicaId: replica.id, registry: REGISTRY }), 404, 'NOT_FOUND', /no credentials for 127\.0\.0\.1:5000/);
      expect((await acmeAdmin('PUT', `/v1/registry-credentials/${REGISTRY}`, { username: 'puller', password: 'pull-s3cret' })).status).toBe(200);

      const ok = await ask(here, { replicaId: replica.id, registry: REGISTRY });
      expect(ok.status).toBe(200);
      expect(ok.body).toEqual({ username: 'puller', password: 'pull-s3cret' });
      expect(ok.headers.get('cache-control')).toBe('no-store');
      const used = await h.prisma.client.event.findFirst({ where: { type: 'registry_credential.used', replicaId: replica.id } });
      expect(used).toMatchObject({ nodeId: here, actor: `node:${here}` });
      expect(JSON.stringify({ ...used, id: String(used!.id) })).not.toContain('pull-s3cret');

      // Another node, another registry, a stopped replica, an unknown one: refused with the reason.
      expectError(await ask(there, { replicaId: replica.id, registry: REGISTRY }, thereNode), 403, 'FORBIDDEN', /not placed on node/);
      expectError(await ask(there, { replicaId: replica.id, registry: REGISTRY }), 403, 'FORBIDDEN', /not node .*'s/);
      expectError(await ask(here, { replicaId: replica.id, registry: REGISTRY }, agent), 401, 'UNAUTHENTICATED', /node's own credential/);
      expectError(await ask(here, { replicaId: replica.id, registry: 'evil.example:5000' }), 403, 'FORBIDDEN', /not the registry of the replica's image/);
      expectError(await ask(here, { replicaId: crypto.randomUUID(), registry: REGISTRY }), 403, 'FORBIDDEN', /not placed/);
      await h.prisma.client.replica.update({ where: { id: replica.id }, data: { state: 'STOPPED' } });
      expectError(await ask(here, { replicaId: replica.id, registry: REGISTRY }), 403, 'FORBIDDEN', /is STOPPED/);
      // Bad input and bad callers.
      expectError(await ask(here, { replicaId: 'nope', registry: REGISTRY }), 400, 'VALIDATION', /replicaId must be a uuid/);
      expectError(await ask(here, { replicaId: replica.id }), 400, 'VALIDATION', /registry/);
      expectError(await ask(here, { replicaId: replica.id, registry: REGISTRY }, acmeAdmin), 401, 'UNAUTHENTICATED', /node's own credential/);
    });
  });

  describe('logs (SSE over the Redis stream contract)', () => {
    it('sends the tail, then follows new lines', async () => {
      const svc = await createWeb('logged');
      const rev = (await h.prisma.client.revision.findFirst({ where: { serviceId: svc.body.id } }))!;
      // The scheduler creates replicas; here the test plays it.
      const r1 = await h.prisma.client.replica.create({ data: { serviceId: svc.body.id, revisionId: rev.id, state: 'RUNNING' } });
      const key = RedisKey.logs(r1.id);
      try {
        for (let i = 0; i < 5; i++) {
          await h.redis.xadd(key, '*', 'ts', new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(), 'stream', i % 2 ? 'stderr' : 'stdout', 'line', `line ${i}`);
        }
        const tail = await viewer('GET', '/v1/services/logged/logs?tail=3');
        expect(tail.status).toBe(200);
        expect(tail.headers.get('content-type')).toMatch(/text\/event-stream/);
        const data = tail.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)));
        expect(data.map((d) => d.line)).toEqual(['line 2', 'line 3', 'line 4']);
        expect(data[1]).toMatchObject({ replicaId: r1.id, stream: 'stderr' });

        const ac = new AbortController();
        const res = await fetch(`${h.base}/v1/services/logged/logs?follow=1&tail=1`, {
          headers: { authorization: `Bearer ${tokens['acme-viewer']}` },
          signal: ac.signal,
        });
        const reader = res.body!.getReader();
        let buf = '';
        const readUntil = async (needle: string) => {
          for (let i = 0; i < 50 && !buf.includes(needle); i++) buf += new TextDecoder().decode((await reader.read()).value);
          return buf;
        };
        expect(await readUntil('line 4')).toContain('line 4');
        await h.redis.xadd(key, '*', 'ts', new Date().toISOString(), 'stream', 'stdout', 'line', 'followed line');
        expect(await readUntil('followed line')).toContain('"line":"followed line"');
        ac.abort();
        expectError(await other('GET', '/v1/services/logged/logs'), 404, 'NOT_FOUND');
      } finally {
        await h.redis.del(key);
      }
    });

    it('since: a duration or an RFC 3339 time picks lines by their stream id (ms); tail still caps; a bad value is a 400', async () => {
      const svc = await createWeb('since');
      const rev = (await h.prisma.client.revision.findFirst({ where: { serviceId: svc.body.id } }))!;
      const r1 = await h.prisma.client.replica.create({ data: { serviceId: svc.body.id, revisionId: rev.id, state: 'RUNNING' } });
      const key = RedisKey.logs(r1.id);
      const t0 = Date.now() - 10 * 60_000; // ten minutes ago, one line a minute
      const lines = async (q: string) => {
        const r = await viewer('GET', `/v1/services/since/logs?${q}`);
        expect(r.status).toBe(200);
        return r.text.split('\n').filter((l) => l.startsWith('data: ')).map((l) => JSON.parse(l.slice(6)).line);
      };
      try {
        for (let i = 0; i < 5; i++) await h.redis.xadd(key, `${t0 + i * 60_000}-0`, 'ts', new Date(t0 + i * 60_000).toISOString(), 'stream', 'stdout', 'line', `minute ${i}`);
        expect(await lines('tail=100')).toEqual(['minute 0', 'minute 1', 'minute 2', 'minute 3', 'minute 4']);
        expect(await lines(`since=${encodeURIComponent(new Date(t0 + 2 * 60_000).toISOString())}`)).toEqual(['minute 2', 'minute 3', 'minute 4']);
        expect(await lines('since=8m30s')).toEqual(['minute 2', 'minute 3', 'minute 4']);
        expect(await lines('since=1h&tail=2')).toEqual(['minute 3', 'minute 4']);
        expect(await lines(`since=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`)).toEqual([]);
        expectError(await viewer('GET', '/v1/services/since/logs?since=yesterday'), 400, 'VALIDATION', /since: "yesterday" is neither a duration like 10m, 1h, 2d nor an RFC 3339 time/);

        // The replica's pull as the agent records it (RedisKey.pull): bytes, and how many were on the node already.
        await h.redis.hset(RedisKey.pull(r1.id), 'sha256:a', JSON.stringify({ done: 300, total: 300, cached: true }), 'sha256:b', JSON.stringify({ done: 50, total: 700, cached: false }), 'sha256:c', 'not json');
        const replicas = await viewer('GET', '/v1/services/since/replicas');
        expect(replicas.body.items.find((x: any) => x.id === r1.id).pull).toEqual({ done: 350, total: 1000, layers: 2, cached: 300 });
      } finally {
        await h.redis.del(key, RedisKey.pull(r1.id));
      }
    });
  });

  describe('hygiene', () => {
    it('serves the OpenAPI document and Prometheus metrics', async () => {
      const doc = await client(h.base)('GET', '/docs-json');
      expect(doc.status).toBe(200);
      expect(Object.keys(doc.body.paths)).toEqual(expect.arrayContaining(['/v1/services', '/v1/services/{name}/deployments', '/v1/nodes/register']));
      expect(doc.body.components.schemas.CreateServiceInput.properties).toHaveProperty('resources');
      // Response bodies come from the contract (libs/contracts): the list documents its replica counts and scaling bounds.
      const list = doc.body.paths['/v1/services'].get.responses['200'].content['application/json'].schema;
      expect(list.properties.items.items).toEqual({ $ref: '#/components/schemas/ServiceSummary' });
      const summary = doc.body.components.schemas.ServiceSummary;
      expect(summary.required).toEqual(expect.arrayContaining(['replicas', 'scaling', 'kind', 'url']));
      expect(summary.properties.replicas.required).toEqual(expect.arrayContaining(['desired', 'ready', 'byState']));
      expect(doc.body.paths['/v1/services/{name}'].get.responses['200'].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/ServiceDetail' });
      expect(doc.body.components.schemas.ServiceDetail.properties.spec.properties.restartPolicy.properties.policy.enum).toEqual(['no', 'always', 'on-failure']);
      expect(doc.body.components.schemas.Replica.properties.lastExit).toBeDefined();
      expect(doc.body.paths['/v1/events'].get.responses['200'].content['application/json'].schema.properties.items.items).toEqual({ $ref: '#/components/schemas/Event' });
      expect(doc.body.components.schemas.Event.required).toContain('service');
      expect(doc.body.paths['/v1/images'].get.responses['200'].content['application/json'].schema.properties.items.items).toEqual({ $ref: '#/components/schemas/Image' });
      expect(doc.body.components.schemas.Image.properties.recent.items.properties).toHaveProperty('usedBy');
      expect(doc.body.paths['/v1/services/{name}/logs'].get.parameters.map((p: any) => p.name)).toContain('since');
      expect(doc.body.paths['/v1/services/{name}/revisions'].get.responses['200'].content['application/json'].schema.properties.items.items).toEqual({
        $ref: '#/components/schemas/Revision',
      });
      const m = await client(h.base)('GET', '/metrics');
      expect(m.text).toMatch(/berth_http_requests_total\{.*route="\/v1\/services\/:name".*\}/);
    });

    it('every list paginates with limit and nextCursor', async () => {
      const all = await viewer('GET', '/v1/services?limit=100');
      expect(all.body.items.length).toBeGreaterThanOrEqual(3);
      for (const s of all.body.items) expect(s.replicas).toEqual({ desired: s.desiredReplicas, ready: expect.any(Number), byState: expect.any(Object) });
      const seen: string[] = [];
      let cursor: string | null = null;
      for (let i = 0; i < 20; i++) {
        const r: any = await viewer('GET', `/v1/services?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
        seen.push(...r.body.items.map((s: any) => s.name));
        cursor = r.body.nextCursor;
        if (!cursor) break;
      }
      expect(seen).toEqual(all.body.items.map((s: any) => s.name));
    });
  });
});
