import { FEASIBLE, type NodeFilter } from './plugin';

/** Label equality constraints: every `key=value` of the service must be on the node. */
export const labelsFilter: NodeFilter = {
  name: 'labels',
  check(node, req) {
    let missing = false;
    for (const k in req.constraints) if (node.labels[k] !== req.constraints[k]) missing = true;
    if (!missing) return FEASIBLE;
    const want = Object.entries(req.constraints)
      .map(([k, v]) => `${k}=${v}`)
      .sort()
      .join(',');
    return { ok: false, code: 'labels', reason: `labels do not match (need ${want})` };
  },
};
