import { FEASIBLE, type NodeFilter } from './plugin';

/** The node must have the requested cpu, memory and pids free; the first shortfall names the rejection. */
export const resourcesFilter: NodeFilter = {
  name: 'resources',
  check(node, req) {
    const r = req.resources;
    const c = node.capacity;
    const a = node.allocated;
    if (c.memoryMiB - a.memoryMiB < r.memoryMiB)
      return { ok: false, code: 'memory', reason: `insufficient memory (need ${r.memoryMiB} MiB)` };
    if (c.cpuMillis - a.cpuMillis < r.cpuMillis) return { ok: false, code: 'cpu', reason: `insufficient cpu (need ${r.cpuMillis}m)` };
    if (c.pids - a.pids < r.pids) return { ok: false, code: 'pids', reason: `insufficient pids (need ${r.pids})` };
    return FEASIBLE;
  },
};
