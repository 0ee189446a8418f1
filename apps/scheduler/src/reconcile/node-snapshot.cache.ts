import type { NodeWithAllocation, SchedulerRepository } from '../db';

/**
 * Reuses one read of the fleet (nodes + allocations) for `ttlMs` across reconciles, the way Nomad
 * plans against an in-memory snapshot. A cheap fleet-version query (node count + last change) still
 * runs every time, so a node that joins, drains or goes DOWN is seen at once. Placements this process
 * commits are added to the cached copy; placements by other schedulers are caught at commit time
 * (capacity check under row locks → stale plan → refresh).
 */
type Res = { cpuMillis: number; memoryMiB: number; pids: number };

export class NodeSnapshotCache {
  private cached: { at: number; version: string; nodes: NodeWithAllocation[]; byId: Map<string, NodeWithAllocation> } | null = null;
  /**
   * Resources taken by plans of this process that are being committed right now. Plans computed
   * meanwhile see them, so concurrent reconciles spread over different nodes instead of all
   * picking the same emptiest ones and queueing on their row locks (or failing the capacity check).
   */
  private readonly inFlight = new Map<string, Res>();
  private loading: Promise<NodeWithAllocation[]> | null = null;

  constructor(
    private readonly repo: SchedulerRepository,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  async get(): Promise<NodeWithAllocation[]> {
    return this.withInFlight(await this.load());
  }

  /** The fleet as last loaded (revalidated like `get`), without in-flight plans; add them with `withReservations`. */
  async base(): Promise<NodeWithAllocation[]> {
    return this.load();
  }

  /** Resources of plans of this process still being committed, by node id. */
  inFlightByNode(): ReadonlyMap<string, Res> {
    return this.inFlight;
  }

  /** `nodes` (from `base`) with the resources of every plan still in flight added. */
  withReservations(nodes: NodeWithAllocation[]): NodeWithAllocation[] {
    return this.withInFlight(nodes);
  }

  private withInFlight(nodes: NodeWithAllocation[]): NodeWithAllocation[] {
    if (this.inFlight.size === 0) return nodes;
    return nodes.map((n) => {
      const r = this.inFlight.get(n.id);
      if (!r) return n;
      return { ...n, allocated: { cpuMillis: n.allocated.cpuMillis + r.cpuMillis, memoryMiB: n.allocated.memoryMiB + r.memoryMiB, pids: n.allocated.pids + r.pids } };
    });
  }

  private async load(): Promise<NodeWithAllocation[]> {
    const version = await this.repo.fleetVersion();
    if (this.cached && this.cached.version === version && this.now() - this.cached.at < this.ttlMs) return this.cached.nodes;
    if (!this.loading) {
      const at = this.now();
      this.loading = this.repo
        .nodeSnapshot()
        .then((nodes) => {
          this.cached = { at, version, nodes, byId: new Map(nodes.map((n) => [n.id, n])) };
          return nodes;
        })
        .finally(() => (this.loading = null));
    }
    return this.loading;
  }

  invalidate(): void {
    this.cached = null;
  }

  /** Marks a plan's placements as in flight until the returned release is called (after its commit, either way). */
  reserve(nodeIds: readonly string[], r: Res): () => void {
    const add = (sign: 1 | -1) => {
      for (const id of nodeIds) {
        const cur = this.inFlight.get(id) ?? { cpuMillis: 0, memoryMiB: 0, pids: 0 };
        const next = { cpuMillis: cur.cpuMillis + sign * r.cpuMillis, memoryMiB: cur.memoryMiB + sign * r.memoryMiB, pids: cur.pids + sign * r.pids };
        if (next.cpuMillis === 0 && next.memoryMiB === 0 && next.pids === 0) this.inFlight.delete(id);
        else this.inFlight.set(id, next);
      }
    };
    add(1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      add(-1);
    };
  }

  /** Accounts a committed placement in the cached copy (a copy read during the commit may count it twice: conservative until the TTL). */
  allocate(nodeId: string, r: Res): void {
    const n = this.cached?.byId.get(nodeId);
    if (!n) return;
    n.allocated = {
      cpuMillis: n.allocated.cpuMillis + r.cpuMillis,
      memoryMiB: n.allocated.memoryMiB + r.memoryMiB,
      pids: n.allocated.pids + r.pids,
    };
  }
}
