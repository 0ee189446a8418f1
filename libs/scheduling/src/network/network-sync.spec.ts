import { networkSyncKey, networkSyncStates, type NetworkNodeView } from './network-sync';

const n = (name: string, over: Partial<NetworkNodeView> = {}): NetworkNodeView => ({
  id: `id-${name}`,
  name,
  status: 'READY',
  podCidr: null,
  underlay: '192.168.1.1',
  wireguardPublicKey: null,
  ...over,
});
const settings = { mode: 'host-gw' as const, clusterCidr: '10.88.0.0/16', wireguardPort: 51820, protectedCidrs: ['192.168.9.9'] };

describe('networkSyncStates', () => {
  const nodes = [
    n('a', { podCidr: '10.88.0.0/24', underlay: '192.168.1.1' }),
    n('b', { podCidr: '10.88.1.0/24', underlay: '192.168.1.2' }),
    n('c', { podCidr: '10.88.2.0/24', underlay: '192.168.1.3', status: 'DOWN' }),
    n('d', { podCidr: '10.88.3.0/24', underlay: '192.168.1.4', status: 'DRAINING' }),
    n('hollow-1', { underlay: '127.0.0.1' }),
  ];
  const replicas = [
    { projectId: 'p2', address: '10.88.1.5' },
    { projectId: 'p1', address: '10.88.0.9' },
    { projectId: 'p1', address: '10.88.0.10' },
    { projectId: 'p1', address: '10.88.0.9' },
  ];

  it('sends to every node with a subnet that is not DOWN; peers are the others that are not DOWN', () => {
    const out = networkSyncStates(nodes, replicas, settings, 42);
    expect([...out.keys()].sort()).toEqual(['id-a', 'id-b', 'id-d']);
    const a = out.get('id-a')!;
    expect(a).toMatchObject({ kind: 'network-sync', mode: 'host-gw', clusterCidr: '10.88.0.0/16', computedAt: 42 });
    expect(a.peers).toEqual([
      { nodeId: 'id-b', nodeName: 'b', underlay: '192.168.1.2', podCidr: '10.88.1.0/24', wireguard: null },
      { nodeId: 'id-d', nodeName: 'd', underlay: '192.168.1.4', podCidr: '10.88.3.0/24', wireguard: null },
    ]);
    expect(out.get('id-b')!.peers.map((p) => p.nodeName)).toEqual(['a', 'd']);
  });

  it('lists each project’s addresses once, sorted, and every node underlay plus the protected CIDRs', () => {
    const a = networkSyncStates(nodes, replicas, settings, 1).get('id-a')!;
    expect(a.projects).toEqual({ p1: ['10.88.0.9', '10.88.0.10'], p2: ['10.88.1.5'] });
    expect(a.infrastructure).toEqual(['127.0.0.1', '192.168.1.1', '192.168.1.2', '192.168.1.3', '192.168.1.4', '192.168.9.9']);
  });

  it('wireguard mode carries each peer’s key and the cluster port; a peer without a key yet has none', () => {
    const wg = nodes.map((x) => (x.name === 'b' ? { ...x, wireguardPublicKey: 'KEY-B=' } : x));
    const a = networkSyncStates(wg, [], { ...settings, mode: 'wireguard' }, 1).get('id-a')!;
    expect(a.peers.find((p) => p.nodeName === 'b')!.wireguard).toEqual({ publicKey: 'KEY-B=', port: 51820 });
    expect(a.peers.find((p) => p.nodeName === 'd')!.wireguard).toBeNull();
  });

  it('nothing for a fleet of hollow nodes (no subnets), and nodes with a non-IPv4 underlay are skipped', () => {
    expect(networkSyncStates([n('h1'), n('h2')], replicas, settings, 1).size).toBe(0);
    const out = networkSyncStates([n('a', { podCidr: '10.88.0.0/24' }), n('b', { podCidr: '10.88.1.0/24', underlay: 'worker-b.example' })], [], settings, 1);
    expect([...out.keys()]).toEqual(['id-a']);
    expect(out.get('id-a')!.peers).toEqual([]);
  });

  it('the key ignores computedAt only', () => {
    const x = networkSyncStates(nodes, replicas, settings, 1).get('id-a')!;
    const y = networkSyncStates(nodes, replicas, settings, 2).get('id-a')!;
    expect(networkSyncKey(x)).toBe(networkSyncKey(y));
    const z = networkSyncStates(nodes, replicas.slice(1), settings, 2).get('id-a')!;
    expect(networkSyncKey(z)).not.toBe(networkSyncKey(x));
  });
});
