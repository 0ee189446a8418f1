import { parseNodeRegistrationResponse } from '@berth/contracts';
import { client, expectError, startApi, type ApiHarness, type Client } from './helpers/api-harness';

/**
 * The pod network at registration (issue 15, item 1), against the real api and Postgres: each node
 * gets its own subnet of the cluster range at its first registration and keeps it across
 * re-registrations (agent restarts, re-joins); hollow nodes (podNetwork: false) get none; a deleted
 * node's subnet is handed out again; when the range is full a join is refused with a 409 and an
 * event, not a 500; GET /v1/nodes shows subnet, underlay and schedulable.
 */
jest.setTimeout(60_000);

const capacity = { cpuMillis: 2000, memoryMiB: 4096, pids: 10000 };
const reg = (name: string, over: Record<string, unknown> = {}) => ({ name, address: '10.0.9.1', capacity, agentVersion: '0.1.0', ...over });
const WG_KEY = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=';

describe('pod subnets at registration', () => {
  let h: ApiHarness;
  let admin: Client;
  let joiner: Client;

  beforeAll(async () => {
    // A tiny range (/22 cut in /24s: four subnets) so exhaustion is cheap to reach.
    h = await startApi('berth_api_nodenet', { BERTH_CLUSTER_CIDR: '10.77.0.0/22', BERTH_NODE_CIDR_MASK: '24', BERTH_NETWORK_MODE: 'wireguard', BERTH_WIREGUARD_PORT: '51999' });
    admin = client(h.base, { token: h.adminToken });
    const jt = await admin('POST', '/v1/nodes/join-tokens', { description: 'podnet' });
    joiner = client(h.base, { token: jt.body.token });
  });
  afterAll(async () => {
    await h?.close();
  });

  const register = async (c: Client, body: Record<string, unknown>) => {
    const r = await c('POST', '/v1/nodes/register', body);
    expect(r.status).toBe(200);
    return parseNodeRegistrationResponse(r.body);
  };

  it('distinct subnets in address order, stable across re-registration; hollow nodes get none', async () => {
    const a = await register(joiner, reg('net-a', { underlay: '192.168.50.1', wireguardPublicKey: WG_KEY }));
    const b = await register(joiner, reg('net-b', { underlay: '192.168.50.2' }));
    const hollow = await register(joiner, reg('net-hollow', { podNetwork: false }));
    expect(a.network).toEqual({ mode: 'wireguard', clusterCidr: '10.77.0.0/22', podCidr: '10.77.0.0/24', wireguardPort: 51999 });
    expect(b.network.podCidr).toBe('10.77.1.0/24');
    expect(hollow.network.podCidr).toBeNull();

    // The agent restarts (its own credential) and re-joins (a join token): same subnet each time.
    const again = await register(client(h.base, { token: a.credential! }), reg('net-a', { underlay: '192.168.50.1' }));
    expect(again.network.podCidr).toBe('10.77.0.0/24');
    const rejoined = await register(joiner, reg('net-b', { underlay: '192.168.50.2' }));
    expect(rejoined.nodeId).toBe(b.nodeId);
    expect(rejoined.network.podCidr).toBe('10.77.1.0/24');

    const listed = (await admin('GET', '/v1/nodes')).body.items;
    // The restarted agent's first registration (before it learns the mode) did not drop its key.
    expect(listed.find((n: any) => n.name === 'net-a')).toMatchObject({
      schedulable: true,
      network: { podCidr: '10.77.0.0/24', underlay: '192.168.50.1', wireguardPublicKey: WG_KEY },
    });
    // Without an underlay, the node's address is used.
    expect(listed.find((n: any) => n.name === 'net-hollow')).toMatchObject({ network: { podCidr: null, underlay: '10.0.9.1' } });
  });

  it('records schedulable: false and shows it; refuses a non-IPv4 underlay or a malformed key with a 400', async () => {
    await register(joiner, reg('net-edge', { schedulable: false }));
    const edge = (await admin('GET', '/v1/nodes')).body.items.find((n: any) => n.name === 'net-edge');
    expect(edge).toMatchObject({ schedulable: false, network: { podCidr: '10.77.2.0/24' } });
    expectError(await joiner('POST', '/v1/nodes/register', reg('net-x', { underlay: 'fe80::1' })), 400, 'VALIDATION', /underlay must be an IPv4 address/);
    expectError(await joiner('POST', '/v1/nodes/register', reg('net-x', { wireguardPublicKey: 'nope' })), 400, 'VALIDATION', /wireguardPublicKey/);
    expectError(await joiner('POST', '/v1/nodes/register', reg('net-x', { schedulable: 'no' })), 400, 'VALIDATION', /schedulable/);
  });

  it('a full range refuses the join with a 409 and an event (no node row); a deleted node frees its subnet', async () => {
    await register(joiner, reg('net-d'));
    const full = await joiner('POST', '/v1/nodes/register', reg('net-e'));
    expectError(full, 409, 'CONFLICT', /all 4 \/24 subnets of 10\.77\.0\.0\/22 are held/);
    expect(await h.prisma.client.node.findUnique({ where: { name: 'net-e' } })).toBeNull();
    const ev = await h.prisma.client.event.findFirst({ where: { type: 'node.pod_subnets_exhausted' } });
    expect(ev).toMatchObject({ level: 'ERROR' });
    expect(ev!.message).toMatch(/net-e cannot join/);
    // Hollow nodes still join: they need no subnet.
    expect((await register(joiner, reg('net-hollow-2', { podNetwork: false }))).network.podCidr).toBeNull();

    await h.prisma.client.node.delete({ where: { name: 'net-b' } });
    const e = await register(joiner, reg('net-e'));
    expect(e.network.podCidr).toBe('10.77.1.0/24');
  });

  it('two nodes joining at once never share a subnet', async () => {
    await h.prisma.client.node.deleteMany({ where: { name: { in: ['net-d', 'net-e', 'net-edge'] } } });
    const rs = await Promise.all(['net-p', 'net-q', 'net-r'].map((n) => joiner('POST', '/v1/nodes/register', reg(n))));
    expect(rs.map((r) => r.status)).toEqual([200, 200, 200]);
    const cidrs = rs.map((r) => r.body.network.podCidr);
    expect(new Set(cidrs).size).toBe(3);
    expect([...cidrs].sort()).toEqual(['10.77.1.0/24', '10.77.2.0/24', '10.77.3.0/24']);
  });
});
