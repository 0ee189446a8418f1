import type { NetworkSyncJob } from '@berth/contracts';
import { cidrsOverlap, cidrWithin, desiredNetwork, podGatewayOf, parseWgDump, planPeers, planRoutes, staleBridgeAddresses, type PodRoute } from './plan';

const state = (over: Partial<NetworkSyncJob> = {}): NetworkSyncJob => ({
  kind: 'network-sync',
  mode: 'host-gw',
  clusterCidr: '10.88.0.0/16',
  peers: [
    { nodeId: 'b', nodeName: 'b', underlay: '192.168.1.2', podCidr: '10.88.1.0/24', wireguard: { publicKey: 'KB=', port: 51820 } },
    { nodeId: 'c', nodeName: 'c', underlay: '192.168.1.3', podCidr: '10.88.2.0/24', wireguard: null },
  ],
  projects: {},
  infrastructure: [],
  computedAt: 1,
  ...over,
});
const self = { podCidr: '10.88.0.0/24', localAddresses: new Set(['192.168.1.1', '10.88.0.1']), wireguardInterface: 'berthwg0' };

describe('desiredNetwork', () => {
  it('host-gw: a route per peer via its underlay', () => {
    expect(desiredNetwork(state(), self)).toEqual({
      routes: [
        { dst: '10.88.1.0/24', via: '192.168.1.2', dev: null },
        { dst: '10.88.2.0/24', via: '192.168.1.3', dev: null },
      ],
      peers: [],
      skipped: [],
    });
  });
  it('wireguard: a peer (allowed-ips = its subnet, endpoint underlay:port) and a route through the interface; a peer without a key waits', () => {
    const d = desiredNetwork(state({ mode: 'wireguard' }), self);
    expect(d.peers).toEqual([{ publicKey: 'KB=', endpoint: '192.168.1.2:51820', allowedIps: ['10.88.1.0/24'] }]);
    expect(d.routes).toEqual([{ dst: '10.88.1.0/24', via: null, dev: 'berthwg0' }]);
    expect(d.skipped).toEqual([{ node: 'c', why: 'no WireGuard public key reported yet' }]);
  });
  it('skips peers on this host (their bridge is local), loopback underlays and its own subnet', () => {
    const peers = [
      { nodeId: 'l', nodeName: 'l', underlay: '192.168.1.1', podCidr: '10.88.5.0/24', wireguard: null },
      { nodeId: 'lo', nodeName: 'lo', underlay: '127.0.0.1', podCidr: '10.88.6.0/24', wireguard: null },
      { nodeId: 's', nodeName: 's', underlay: '192.168.1.9', podCidr: '10.88.0.0/24', wireguard: null },
    ];
    const d = desiredNetwork(state({ peers }), self);
    expect(d.routes).toEqual([]);
    expect(d.skipped.map((s) => s.node)).toEqual(['l', 'lo', 's']);
  });
});

describe('planRoutes', () => {
  const b: PodRoute = { dst: '10.88.1.0/24', via: '192.168.1.2', dev: null };
  const c: PodRoute = { dst: '10.88.2.0/24', via: '192.168.1.3', dev: null };
  it('adds missing routes, replaces changed ones, keeps equal ones', () => {
    expect(planRoutes([b, c], [], '10.88.0.0/16')).toEqual({ replace: [b, c], remove: [] });
    expect(planRoutes([b, c], [b, c], '10.88.0.0/16')).toEqual({ replace: [], remove: [] });
    const moved = { ...b, via: '192.168.1.20' };
    expect(planRoutes([moved, c], [b, c], '10.88.0.0/16')).toEqual({ replace: [moved], remove: [] });
    // host-gw → wireguard: same destination through the interface.
    const wg = { dst: b.dst, via: null, dev: 'berthwg0' };
    expect(planRoutes([wg], [b], '10.88.0.0/16')).toEqual({ replace: [wg], remove: [] });
  });
  it('withdraws its routes to peers no longer listed (a DOWN or deleted node), only inside the cluster range', () => {
    const foreign = { dst: '10.99.1.0/24', via: '192.168.1.7', dev: null };
    expect(planRoutes([c], [b, c, foreign], '10.88.0.0/16')).toEqual({ replace: [], remove: [b] });
    expect(planRoutes([], [b, c], '10.88.0.0/16').remove).toEqual([b, c]);
  });
});

describe('planPeers', () => {
  const p = { publicKey: 'KB=', endpoint: '192.168.1.2:51820', allowedIps: ['10.88.1.0/24'] };
  it('sets new or changed peers and removes unlisted ones', () => {
    expect(planPeers([p], [])).toEqual({ set: [p], remove: [] });
    expect(planPeers([p], [p])).toEqual({ set: [], remove: [] });
    expect(planPeers([{ ...p, endpoint: '192.168.1.9:51820' }], [p]).set).toHaveLength(1);
    expect(planPeers([p], [p, { publicKey: 'KX=', endpoint: null, allowedIps: [] }])).toEqual({ set: [], remove: ['KX='] });
  });
});

describe('helpers', () => {
  it('parses wg dump', () => {
    const dump = 'PRIV=\tPUB=\t51820\toff\nKB=\t(none)\t192.168.1.2:51820\t10.88.1.0/24\t0\t0\t0\t25\nKC=\t(none)\t(none)\t(none)\t0\t0\t0\toff\n';
    expect(parseWgDump(dump)).toEqual({
      publicKey: 'PUB=',
      listenPort: 51820,
      peers: [
        { publicKey: 'KB=', endpoint: '192.168.1.2:51820', allowedIps: ['10.88.1.0/24'] },
        { publicKey: 'KC=', endpoint: null, allowedIps: [] },
      ],
    });
  });
  it('gateway and containment', () => {
    expect(podGatewayOf('10.88.3.0/24')).toEqual({ address: '10.88.3.1', prefix: 24 });
    expect(cidrWithin('10.88.3.0/24', '10.88.0.0/16')).toBe(true);
    expect(cidrWithin('10.89.3.0/24', '10.88.0.0/16')).toBe(false);
    expect(cidrWithin('10.0.0.0/8', '10.88.0.0/16')).toBe(false);
    expect(cidrsOverlap('10.88.0.1/16', '10.88.3.0/24')).toBe(true);
    expect(cidrsOverlap('10.88.2.1/24', '10.88.3.0/24')).toBe(false);
  });
  it('finds bridge addresses that clash with the node subnet (an upgrade from one /16 per bridge)', () => {
    expect(staleBridgeAddresses([{ local: '10.88.0.1', prefixlen: 16 }], '10.88.3.0/24')).toEqual(['10.88.0.1/16']);
    expect(staleBridgeAddresses([{ local: '10.88.0.1', prefixlen: 16 }], '10.88.0.0/24')).toEqual(['10.88.0.1/16']);
    expect(staleBridgeAddresses([{ local: '10.88.3.1', prefixlen: 24 }, { local: '192.168.5.1', prefixlen: 24 }], '10.88.3.0/24')).toEqual([]);
  });
});
