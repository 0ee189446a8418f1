import type { NodeView } from '../types';
import { binpackScorer } from './binpack.scorer';
import { imageCacheScorer } from './image-cache.scorer';
import { labelsFilter } from './labels.filter';
import type { NodeFilter, NodeScorer, PlacementRequest, PlacementState } from './plugin';
import { readyNodeFilter } from './ready-node.filter';
import { resourcesFilter } from './resources.filter';
import { schedulableFilter } from './schedulable.filter';
import { leastAllocatedScorer, serviceSpreadScorer } from './spread.scorer';

export const DEFAULT_FILTERS: readonly NodeFilter[] = [readyNodeFilter, schedulableFilter, labelsFilter, resourcesFilter];
export const DEFAULT_SCORERS: readonly NodeScorer[] = [
  serviceSpreadScorer,
  leastAllocatedScorer,
  binpackScorer,
  imageCacheScorer,
];

/**
 * Bounded scoring (Nomad's limit iterator, Kubernetes' percentageOfNodesToScore): instead of scoring
 * every node, a placement walks the fleet from a rotating cursor and scores only the first `limit`
 * feasible nodes it meets. The window is widened to one more node than the service already has
 * replicas, so a node without a replica of the service is always among those scored when one is
 * feasible (SPREAD still puts one replica per node while nodes last). A replica that fits nowhere
 * has seen the whole fleet, so its PENDING reason counts every node. `offset` is where the first
 * placement starts (the caller passes a random one; tests pass a fixed one); each placement continues
 * where the previous one stopped.
 */
export interface PlacementSampling {
  /** Feasible nodes scored per placement; 0 or ≥ fleet size = all. */
  limit: number;
  /** Index (in node order, taken modulo the fleet size) where the first placement starts. */
  offset: number;
}

export type PlaceResult =
  | { ok: true; nodeId: string }
  | { ok: false; reason: string; rejected: Record<string, number> };

/** Deterministic node order: by name, then id. */
export const byNodeOrder = (a: NodeView, b: NodeView) =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : a.id < b.id ? -1 : a.id > b.id ? 1 : 0;

/**
 * Places replicas one at a time over a private copy of the node snapshot, so each placement sees
 * the resources and service replicas the previous ones took. Pure: the snapshot passed in is not modified.
 */
export class Placer {
  private readonly nodes: NodeView[];
  private readonly onNode = new Map<string, number>();
  private total = 0;
  private readonly state: PlacementState = {
    serviceReplicasOnNode: (id) => this.onNode.get(id) ?? 0,
    serviceReplicasTotal: () => this.total,
  };

  constructor(
    nodes: readonly NodeView[],
    /** nodeId of every live replica the service already has (one entry per replica). */
    serviceReplicaNodes: readonly (string | null)[],
    private readonly filters: readonly NodeFilter[] = DEFAULT_FILTERS,
    private readonly scorers: readonly NodeScorer[] = DEFAULT_SCORERS,
    sampling?: PlacementSampling,
  ) {
    // Nodes are copied only when a placement changes them (copy-on-write keeps this pure without
    // cloning the whole fleet per plan); the snapshot usually arrives sorted already.
    this.nodes = nodes.slice();
    if (!isSorted(this.nodes)) this.nodes.sort(byNodeOrder);
    for (const id of serviceReplicaNodes) {
      this.total++;
      if (id) this.onNode.set(id, (this.onNode.get(id) ?? 0) + 1);
    }
    const n = this.nodes.length;
    if (sampling && sampling.limit > 0 && sampling.limit < n) {
      this.limit = Math.floor(sampling.limit);
      this.cursor = ((Math.floor(sampling.offset) % n) + n) % n;
    }
  }

  /** 0 = score every feasible node (and the cursor stays at the first node: ties go to node order). */
  private readonly limit: number = 0;
  private cursor = 0;

  private readonly copied = new Set<number>();

  place(req: PlacementRequest): PlaceResult {
    const rejected: Record<string, { count: number; reason: string }> = {};
    let best = -1;
    let bestScore = -Infinity;
    const weights = this.scorers.map((s) => s.weight(req));
    const n = this.nodes.length;
    const want = this.limit > 0 ? Math.max(this.limit, this.total + 1) : n;
    let feasibleSeen = 0;
    let idx = this.cursor;
    for (let visited = 0; visited < n && feasibleSeen < want; visited++, idx = idx + 1 === n ? 0 : idx + 1) {
      const node = this.nodes[idx]!;
      let feasible = true;
      for (const f of this.filters) {
        const r = f.check(node, req, this.state);
        if (!r.ok) {
          const slot = (rejected[r.code] ??= { count: 0, reason: r.reason });
          slot.count++;
          feasible = false;
          break;
        }
      }
      if (!feasible) continue;
      feasibleSeen++;
      let score = 0;
      for (let i = 0; i < this.scorers.length; i++) {
        if (weights[i] !== 0) score += weights[i]! * this.scorers[i]!.score(node, req, this.state);
      }
      // Strictly greater: on a tie the node met first wins (without sampling: the first in node order).
      if (score > bestScore) {
        best = idx;
        bestScore = score;
      }
    }
    if (this.limit > 0) this.cursor = idx;
    if (best < 0) {
      return {
        ok: false,
        reason: summariseRejections(this.nodes.length, rejected),
        rejected: Object.fromEntries(Object.entries(rejected).map(([k, v]) => [k, v.count])),
      };
    }
    if (!this.copied.has(best)) {
      const n = this.nodes[best]!;
      this.nodes[best] = { ...n, allocated: { ...n.allocated } };
      this.copied.add(best);
    }
    const chosen = this.nodes[best]!;
    chosen.allocated.cpuMillis += req.resources.cpuMillis;
    chosen.allocated.memoryMiB += req.resources.memoryMiB;
    chosen.allocated.pids += req.resources.pids;
    this.onNode.set(chosen.id, (this.onNode.get(chosen.id) ?? 0) + 1);
    this.total++;
    return { ok: true, nodeId: chosen.id };
  }
}

function isSorted(nodes: readonly NodeView[]): boolean {
  for (let i = 1; i < nodes.length; i++) if (byNodeOrder(nodes[i - 1]!, nodes[i]!) > 0) return false;
  return true;
}

/** "0/3 nodes available: 2 insufficient memory (need 512 MiB), 1 draining" (largest group first). */
export function summariseRejections(total: number, rejected: Record<string, { count: number; reason: string }>): string {
  if (total === 0) return '0/0 nodes available: no nodes registered';
  const parts = Object.values(rejected)
    .sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : 1))
    .map((r) => `${r.count} ${r.reason}`);
  return `0/${total} nodes available: ${parts.join(', ')}`;
}
