import { formatCidr, parseCidr } from './ipv4';

/** The cluster's pod range and the size of each node's share of it. */
export interface PodRange {
  /** e.g. `10.88.0.0/16` (BERTH_CLUSTER_CIDR). */
  clusterCidr: string;
  /** Prefix length of one node's subnet, e.g. 24 (BERTH_NODE_CIDR_MASK). */
  nodeMask: number;
}

/** Checks a pod range; returns a message naming what is wrong, or null. */
export function podRangeProblem(r: PodRange): string | null {
  let c;
  try {
    c = parseCidr(r.clusterCidr);
  } catch (e) {
    return (e as Error).message;
  }
  if (!Number.isInteger(r.nodeMask) || r.nodeMask < c.prefix || r.nodeMask > 30) {
    return `node subnet mask /${r.nodeMask} must be between the cluster range's /${c.prefix} and /30`;
  }
  return null;
}

/** How many node subnets the range holds. */
export function podSubnetCount(r: PodRange): number {
  return 2 ** (r.nodeMask - parseCidr(r.clusterCidr).prefix);
}

/**
 * The first node subnet of the range that is not `taken` (in address order), or null when every
 * one is taken. Subnets in `taken` that are not part of the range are ignored.
 */
export function allocatePodSubnet(r: PodRange, taken: Iterable<string>): string | null {
  const problem = podRangeProblem(r);
  if (problem) throw new Error(problem);
  const c = parseCidr(r.clusterCidr);
  const used = new Set(taken);
  const size = 2 ** (32 - r.nodeMask);
  const count = podSubnetCount(r);
  for (let i = 0; i < count; i++) {
    const s = formatCidr({ network: (c.network + i * size) >>> 0, prefix: r.nodeMask });
    if (!used.has(s)) return s;
  }
  return null;
}
