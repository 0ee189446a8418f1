import { FEASIBLE, type NodeFilter } from './plugin';

/** Only READY nodes take new replicas: DOWN ones are gone, DRAINING ones are being emptied. */
export const readyNodeFilter: NodeFilter = {
  name: 'ready-node',
  check(node) {
    if (node.status === 'READY') return FEASIBLE;
    if (node.status === 'DRAINING') return { ok: false, code: 'draining', reason: 'draining' };
    return { ok: false, code: 'down', reason: 'node down' };
  },
};
