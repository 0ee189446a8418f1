import type { NodeView, PlacementStrategy, Resources } from '../types';

/**
 * Placement is a stack of small plugins (Nomad's feasibility checkers and rank iterators):
 * every filter must accept a node for it to be feasible; the feasible node with the highest
 * weighted score wins, ties broken by node order (name, then id) so results are deterministic.
 */
export interface PlacementRequest {
  serviceId: string;
  resources: Resources;
  constraints: Record<string, string>;
  strategy: PlacementStrategy;
  imageDigest: string;
}

/** Per-node facts that change while one plan places several replicas. */
export interface PlacementState {
  /** Replicas of the requesting service already on (or planned for) each node. */
  serviceReplicasOnNode(nodeId: string): number;
  /** Live replicas of the requesting service across all nodes. */
  serviceReplicasTotal(): number;
}

export type FilterResult =
  | { ok: true }
  | {
      ok: false;
      /** Groups rejections in the summary ("2 insufficient memory"). */
      code: string;
      /** Summary label for this code, e.g. "insufficient memory (need 512 MiB)". */
      reason: string;
    };

export interface NodeFilter {
  readonly name: string;
  check(node: NodeView, req: PlacementRequest, state: PlacementState): FilterResult;
}

export interface NodeScorer {
  readonly name: string;
  /** Returns a score in [0, 1]; the placer multiplies it by `weight(req)`. */
  weight(req: PlacementRequest): number;
  score(node: NodeView, req: PlacementRequest, state: PlacementState): number;
}

/** The one accepting result (filters run for every node of every placement: no allocation). */
export const FEASIBLE: FilterResult = Object.freeze({ ok: true as const });

export const free = (n: NodeView): Resources => ({
  cpuMillis: n.capacity.cpuMillis - n.allocated.cpuMillis,
  memoryMiB: n.capacity.memoryMiB - n.allocated.memoryMiB,
  pids: n.capacity.pids - n.allocated.pids,
});
