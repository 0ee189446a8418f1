import { FEASIBLE, type NodeFilter } from './plugin';

/**
 * Nodes registered with `schedulable: false` (BERTH_NODE_SCHEDULABLE=false: an edge or control-plane
 * host that is part of the pod network) never take replicas.
 */
export const schedulableFilter: NodeFilter = {
  name: 'schedulable',
  check(node) {
    if (node.schedulable === false) return { ok: false, code: 'unschedulable', reason: 'node not schedulable (BERTH_NODE_SCHEDULABLE=false)' };
    return FEASIBLE;
  },
};
