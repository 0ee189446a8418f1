/**
 * The pod network's pure half: which routes and WireGuard peers a node wants for a network-sync
 * state, and the difference from what the kernel has. The I/O half is `PodNetwork`.
 */
import type { NetworkSyncJob } from '@berth/contracts';

/** A route to another node's pod subnet: via its underlay (host-gw) or through a device (wireguard). */
export interface PodRoute {
  dst: string;
  via: string | null;
  dev: string | null;
}

export interface WireguardPeer {
  publicKey: string;
  /** `ip:port`, or null when not known. */
  endpoint: string | null;
  allowedIps: string[];
}

export interface DesiredNetwork {
  routes: PodRoute[];
  /** wireguard mode only. */
  peers: WireguardPeer[];
  /** Peers left out, with why (for the log). */
  skipped: { node: string; why: string }[];
}

export interface LocalFacts {
  /** This node's own subnet. */
  podCidr: string;
  /** IPv4 addresses on this host: a peer at one of them shares this kernel (its bridge is local). */
  localAddresses: ReadonlySet<string>;
  wireguardInterface: string;
}

/** Routes and peers a node must program for `state`. */
export function desiredNetwork(state: NetworkSyncJob, self: LocalFacts): DesiredNetwork {
  const out: DesiredNetwork = { routes: [], peers: [], skipped: [] };
  const seen = new Set<string>();
  for (const p of state.peers) {
    if (p.podCidr === self.podCidr) {
      out.skipped.push({ node: p.nodeName, why: `same pod subnet as this node (${p.podCidr})` });
      continue;
    }
    if (self.localAddresses.has(p.underlay) || p.underlay.startsWith('127.')) {
      out.skipped.push({ node: p.nodeName, why: `underlay ${p.underlay} is on this host: its bridge is local` });
      continue;
    }
    if (seen.has(p.podCidr)) {
      out.skipped.push({ node: p.nodeName, why: `pod subnet ${p.podCidr} listed twice` });
      continue;
    }
    if (state.mode === 'wireguard') {
      if (!p.wireguard) {
        out.skipped.push({ node: p.nodeName, why: 'no WireGuard public key reported yet' });
        continue;
      }
      out.peers.push({ publicKey: p.wireguard.publicKey, endpoint: `${p.underlay}:${p.wireguard.port}`, allowedIps: [p.podCidr] });
      out.routes.push({ dst: p.podCidr, via: null, dev: self.wireguardInterface });
    } else {
      out.routes.push({ dst: p.podCidr, via: p.underlay, dev: null });
    }
    seen.add(p.podCidr);
  }
  return out;
}

const sameRoute = (a: PodRoute, b: PodRoute): boolean => a.dst === b.dst && (a.via ?? null) === (b.via ?? null) && (a.via ? true : a.dev === b.dev);

/**
 * What to change so the routes this node added (`current`: tagged as ours) become `desired`:
 * `replace` the missing or different ones, `remove` ours that are no longer wanted. Only routes
 * inside `clusterCidr` are ever removed, so agents of other clusters on one host never touch
 * each other's routes.
 */
export function planRoutes(desired: readonly PodRoute[], current: readonly PodRoute[], clusterCidr: string): { replace: PodRoute[]; remove: PodRoute[] } {
  const want = new Map(desired.map((r) => [r.dst, r]));
  const replace = desired.filter((d) => !current.some((c) => sameRoute(d, c)));
  const remove = current.filter((c) => !want.has(c.dst) && cidrWithin(c.dst, clusterCidr));
  return { replace, remove };
}

/**
 * WireGuard peers to set (new, or endpoint / allowed-ips changed) and to remove (public keys no
 * longer listed).
 */
export function planPeers(desired: readonly WireguardPeer[], current: readonly WireguardPeer[]): { set: WireguardPeer[]; remove: string[] } {
  const have = new Map(current.map((p) => [p.publicKey, p]));
  const want = new Set(desired.map((p) => p.publicKey));
  const set = desired.filter((d) => {
    const c = have.get(d.publicKey);
    return !c || c.endpoint !== d.endpoint || [...c.allowedIps].sort().join(',') !== [...d.allowedIps].sort().join(',');
  });
  return { set, remove: current.filter((c) => !want.has(c.publicKey)).map((c) => c.publicKey) };
}

/** Parses `wg show <if> dump`: the interface line, then one line per peer. */
export function parseWgDump(text: string): { publicKey: string | null; listenPort: number | null; peers: WireguardPeer[] } {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  if (lines.length === 0) return { publicKey: null, listenPort: null, peers: [] };
  const [, pub, port] = lines[0]!.split('\t');
  const peers = lines.slice(1).map((l) => {
    const [publicKey, , endpoint, allowed] = l.split('\t');
    return {
      publicKey: publicKey!,
      endpoint: !endpoint || endpoint === '(none)' ? null : endpoint,
      allowedIps: !allowed || allowed === '(none)' ? [] : allowed.split(','),
    };
  });
  return { publicKey: pub && pub !== '(none)' ? pub : null, listenPort: port ? Number(port) : null, peers };
}

/** The subnet's first host address (the bridge's gateway): `10.88.3.0/24` → `10.88.3.1`, with the prefix. */
export function podGatewayOf(cidr: string): { address: string; prefix: number } {
  const [ip, len] = cidr.split('/');
  const n = (toInt(ip!) + 1) >>> 0;
  return { address: [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.'), prefix: Number(len) };
}

function toInt(ip: string): number {
  const p = ip.split('.').map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) throw new Error(`${JSON.stringify(ip)} is not an IPv4 address`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** Whether CIDR `inner` lies inside CIDR `outer`. */
export function cidrWithin(inner: string, outer: string): boolean {
  const [ia, il] = inner.split('/');
  const [oa, ol] = outer.split('/');
  const ip = Number(il ?? 32);
  const op = Number(ol);
  if (ip < op) return false;
  const mask = op === 0 ? 0 : (0xffffffff << (32 - op)) >>> 0;
  return ((toInt(ia!) & mask) >>> 0) === ((toInt(oa!) & mask) >>> 0);
}

/** Whether two CIDRs (an address with a prefix length is fine) share any address. */
export function cidrsOverlap(a: string, b: string): boolean {
  const [aa, al] = a.split('/');
  const [ba, bl] = b.split('/');
  const p = Math.min(Number(al ?? 32), Number(bl ?? 32));
  const mask = p === 0 ? 0 : (0xffffffff << (32 - p)) >>> 0;
  return ((toInt(aa!) & mask) >>> 0) === ((toInt(ba!) & mask) >>> 0);
}

/**
 * Addresses on the bridge to remove before its gateway is added: those overlapping the node's
 * subnet that are not exactly the gateway (e.g. `10.88.0.1/16` from before pod subnets existed,
 * which the CNI bridge plugin would refuse next to `10.88.3.1/24`).
 */
export function staleBridgeAddresses(have: readonly { local: string; prefixlen: number }[], podCidr: string): string[] {
  const gw = podGatewayOf(podCidr);
  return have
    .filter((a) => !(a.local === gw.address && a.prefixlen === gw.prefix) && cidrsOverlap(`${a.local}/${a.prefixlen}`, podCidr))
    .map((a) => `${a.local}/${a.prefixlen}`);
}
