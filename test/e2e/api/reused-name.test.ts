/**
 * Issue 13 item 11: a deleted service's name can be taken again; the deleted service's history
 * (detail, revisions, replicas, events) stays readable with `?deleted=`. Real api, Postgres, Redis
 * and registry.
 */
import { client, expectError, startApi, type ApiHarness, type Client } from './helpers/api-harness';
import { pushWebImage, REGISTRY, uniqueRepo } from './helpers/images';

jest.setTimeout(60_000);

describe('reusing a deleted service name (real Postgres)', () => {
  let h: ApiHarness;
  let admin: Client;
  const repo = uniqueRepo('reuse');
  const img = (tag: string) => `${REGISTRY}/${repo}:${tag}`;
  let d1: string;
  let d2: string;
  let d3: string;

  beforeAll(async () => {
    h = await startApi('berth_api_reuse_e2e');
    d1 = (await pushWebImage(repo, 'v1', 'one')).digest;
    d2 = (await pushWebImage(repo, 'v2', 'two')).digest;
    d3 = (await pushWebImage(repo, 'v3', 'three')).digest;
    admin = client(h.base, { token: h.adminToken });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('a new service takes the name; the deleted ones stay readable, newest deletion first or by id', async () => {
    // First "web": revisions 1 (v1) and 2 (v2), then deleted.
    const first = await admin('POST', '/v1/services', { name: 'web', image: img('v1'), port: 8080 });
    expect(first.status).toBe(201);
    expect((await admin('POST', '/v1/services/web/deployments', { image: img('v2') })).status).toBe(201);
    expect((await admin('DELETE', '/v1/services/web')).status).toBe(204);

    // The name is free again: deploying to it creates a new service with its own history.
    const second = await admin('POST', '/v1/services', { name: 'web', image: img('v3'), port: 8080 });
    expect(second.status).toBe(201);
    expect(second.body.id).not.toBe(first.body.id);
    expect(second.body.deletedAt).toBeNull();
    // A second live service of the name is still refused.
    expectError(await admin('POST', '/v1/services', { name: 'web', image: img('v3'), port: 8080 }), 409, 'CONFLICT', /already exists/);

    // Every read by name picks the live service.
    const live = await admin('GET', '/v1/services/web');
    expect(live.body).toMatchObject({ id: second.body.id, deletedAt: null, activeRevision: { number: 1, digest: d3 } });
    const liveRevs = await admin('GET', '/v1/services/web/revisions');
    expect(liveRevs.body.items.map((r: any) => [r.number, r.digest])).toEqual([[1, d3]]);
    const deploy = await admin('POST', '/v1/services/web/deployments', { image: img('v1') });
    expect(deploy.status).toBe(201);
    expect(deploy.body.revision.number).toBe(2);
    expect((await admin('GET', '/v1/services')).body.items.map((s: any) => s.id)).toEqual([second.body.id]);

    // The deleted one's history: detail, revisions, one revision, replicas, events.
    const gone = await admin('GET', '/v1/services/web?deleted=true');
    expect(gone.status).toBe(200);
    expect(gone.body).toMatchObject({ id: first.body.id, name: 'web', activeRevision: { number: 2, digest: d2 } });
    expect(Date.parse(gone.body.deletedAt)).not.toBeNaN();
    const oldRevs = await admin('GET', '/v1/services/web/revisions?deleted=true');
    expect(oldRevs.body.items.map((r: any) => [r.number, r.digest])).toEqual([
      [2, d2],
      [1, d1],
    ]);
    expect((await admin('GET', '/v1/services/web/revisions/1?deleted=true')).body).toMatchObject({ number: 1, digest: d1 });
    expect((await admin('GET', '/v1/services/web/replicas?deleted=true')).status).toBe(200);
    const oldEvents = await admin('GET', '/v1/services/web/events?deleted=true&limit=100');
    expect(oldEvents.body.items.map((e: any) => e.type)).toEqual(['service.deleted', 'service.deployed', 'service.created']);
    expect(new Set(oldEvents.body.items.map((e: any) => e.serviceId))).toEqual(new Set([first.body.id]));
    const liveEvents = await admin('GET', '/v1/services/web/events?limit=100');
    expect(liveEvents.body.items.map((e: any) => e.type)).toEqual(['service.deployed', 'service.created']);

    // Delete the second too: two deleted "web"s, newest deletion first; each addressable by id.
    expect((await admin('DELETE', '/v1/services/web')).status).toBe(204);
    expectError(await admin('GET', '/v1/services/web'), 404, 'NOT_FOUND');
    const deleted = await admin('GET', '/v1/services?deleted=true');
    expect(deleted.body.items.map((s: any) => s.id)).toEqual([second.body.id, first.body.id]);
    expect((await admin('GET', '/v1/services/web?deleted=true')).body.id).toBe(second.body.id);
    expect((await admin('GET', `/v1/services/web/revisions?deleted=${first.body.id}`)).body.items).toHaveLength(2);
    expect((await admin('GET', `/v1/services/web/events?deleted=${second.body.id}`)).body.items.map((e: any) => e.serviceId)).toEqual(
      Array(3).fill(second.body.id),
    );

    // Bad selectors are 4xx naming the problem.
    expectError(await admin('GET', '/v1/services/web/revisions?deleted=yes'), 400, 'VALIDATION', /deleted must be true, false or the id/);
    expectError(await admin('GET', `/v1/services/web?deleted=00000000-0000-4000-8000-000000000000`), 404, 'NOT_FOUND', /no deleted service 'web' with id/);
    expectError(await admin('GET', '/v1/services/api?deleted=true'), 404, 'NOT_FOUND', /no deleted service 'api'/);
    expectError(await admin('GET', `/v1/services?deleted=${first.body.id}`), 400, 'VALIDATION', /true or false/);
  });
});
