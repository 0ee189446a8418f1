import type { NodeScorer } from './plugin';

/**
 * Spreads one service's replicas across nodes: a node already holding k of them scores 1/(1+k).
 * Under the SPREAD strategy this dominates; under BINPACK it only breaks ties between equally full nodes.
 */
export const serviceSpreadScorer: NodeScorer = {
  name: 'service-spread',
  weight: (req) => (req.strategy === 'SPREAD' ? 10 : 0.5),
  score: (node, _req, state) => 1 / (1 + state.serviceReplicasOnNode(node.id)),
};

/** SPREAD strategy: prefer the emptiest node (least cpu+memory allocated after placement). */
export const leastAllocatedScorer: NodeScorer = {
  name: 'least-allocated',
  weight: (req) => (req.strategy === 'SPREAD' ? 1 : 0),
  score: (node, req) => 1 - utilisationAfter(node, req.resources),
};

export function utilisationAfter(
  node: { capacity: { cpuMillis: number; memoryMiB: number }; allocated: { cpuMillis: number; memoryMiB: number } },
  r: { cpuMillis: number; memoryMiB: number },
): number {
  const cpu = node.capacity.cpuMillis > 0 ? (node.allocated.cpuMillis + r.cpuMillis) / node.capacity.cpuMillis : 1;
  const mem = node.capacity.memoryMiB > 0 ? (node.allocated.memoryMiB + r.memoryMiB) / node.capacity.memoryMiB : 1;
  return Math.min(1, Math.max(0, (cpu + mem) / 2));
}
