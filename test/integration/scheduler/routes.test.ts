import { RedisKey, type RouteEntry } from '@berth/contracts';
import { Harness, waitFor } from './helpers/harness';

jest.setTimeout(60_000);

/**
 * The routing table is flushed on an interval, except for changes a client waits on: a revision
 * becoming ACTIVE (the CLI reports the deploy done) and endpoints appearing or going. With the
 * interval set far beyond the test, only those immediate flushes can make these pass.
 */
describe('route publishing that does not wait for the flush interval', () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.setup();
    await h.startScheduler({ BERTH_ROUTES_FLUSH_MS: 600_000 });
    await h.addNode('node-a');
  });
  afterAll(() => h.teardown());

  const entry = async (name: string) => {
    const raw = await h.redis.hget(RedisKey.routes, `p${h.id}/${name}`);
    return raw ? (JSON.parse(raw) as RouteEntry) : null;
  };

  it('publishes the endpoints as the replicas become READY', async () => {
    const web = await h.createService('web', 2);
    const route = await waitFor('route with 2 endpoints', async () => ((await entry('web'))?.endpoints.length === 2 ? entry('web') : null), 20_000);
    expect(route?.serviceId).toBe(web.id);
  });

  it('publishes the entry of a service at zero as soon as its revision is ACTIVE', async () => {
    const zero = await h.createService('zero', 0);
    await waitFor('revision ACTIVE', async () => (await h.prisma.client.revision.findFirstOrThrow({ where: { serviceId: zero.id } })).status === 'ACTIVE', 20_000);
    const route = await waitFor('route entry', () => entry('zero'), 5_000);
    expect(route).toMatchObject({ serviceId: zero.id, desiredReplicas: 0, endpoints: [] });
  });
});
