import type { NetworkMode, NetworkPeer, NetworkSyncJob } from '@berth/contracts';
import { ipv4ToInt } from './ipv4';

/** A node as the pod network sees it. */
export interface NetworkNodeView {
  id: string;
  name: string;
  status: string;
  /** null: no pod subnet (hollow nodes, or not assigned yet): the node gets no sync and is nobody's peer. */
  podCidr: string | null;
  /** Where other nodes reach it (Node.underlayAddress, else Node.address). */
  underlay: string;
  wireguardPublicKey: string | null;
}

/** A replica that holds an address (running somewhere, not STOPPED/FAILED). */
export interface NetworkReplicaView {
  projectId: string;
  address: string;
}

export interface NetworkSettings {
  mode: NetworkMode;
  clusterCidr: string;
  wireguardPort: number;
  /** Extra addresses / CIDRs replicas may not reach (the control plane when it is not a node). */
  protectedCidrs: readonly string[];
}

const isIpv4 = (s: string): boolean => {
  try {
    ipv4ToInt(s);
    return true;
  } catch {
    return false;
  }
};

/**
 * The network-sync command of every node that must get one (every node with a pod subnet that is
 * not DOWN), keyed by node id. Peers of a node: every other node with a pod subnet that is not
 * DOWN and has an IPv4 underlay. The full state, deterministic for the same input (sorted), so a
 * caller can compare it with what it sent last.
 */
export function networkSyncStates(
  nodes: readonly NetworkNodeView[],
  replicas: readonly NetworkReplicaView[],
  s: NetworkSettings,
  computedAt: number,
): Map<string, NetworkSyncJob> {
  const out = new Map<string, NetworkSyncJob>();
  const members = nodes
    .filter((n) => n.podCidr !== null && n.status !== 'DOWN' && isIpv4(n.underlay))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : 1));
  if (members.length === 0) return out;
  const projects: Record<string, string[]> = {};
  const byProject = new Map<string, Set<string>>();
  for (const r of replicas) {
    if (!isIpv4(r.address)) continue;
    let set = byProject.get(r.projectId);
    if (!set) byProject.set(r.projectId, (set = new Set()));
    set.add(r.address);
  }
  for (const id of [...byProject.keys()].sort()) projects[id] = [...byProject.get(id)!].sort((a, b) => ipv4ToInt(a) - ipv4ToInt(b));
  const infrastructure = [...new Set([...nodes.map((n) => n.underlay).filter(isIpv4), ...s.protectedCidrs])].sort();
  const peers: NetworkPeer[] = members.map((n) => ({
    nodeId: n.id,
    nodeName: n.name,
    underlay: n.underlay,
    podCidr: n.podCidr!,
    wireguard: s.mode === 'wireguard' && n.wireguardPublicKey ? { publicKey: n.wireguardPublicKey, port: s.wireguardPort } : null,
  }));
  for (const n of members) {
    out.set(n.id, {
      kind: 'network-sync',
      mode: s.mode,
      clusterCidr: s.clusterCidr,
      peers: peers.filter((p) => p.nodeId !== n.id),
      projects,
      infrastructure,
      computedAt,
    });
  }
  return out;
}

/** What identifies a state for "has it changed since the last send" (everything but computedAt). */
export function networkSyncKey(job: NetworkSyncJob): string {
  return JSON.stringify({ ...job, computedAt: 0 });
}
