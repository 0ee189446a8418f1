import type { NodeWithAllocation, SchedulerRepository } from '@berth/db';

type Res = { cpuMillis: number; memoryMiB: number; pids: number };

/**
 * One immutable view of the fleet: rows are frozen and never change once handed out. A committed
 * placement yields a new snapshot (copy-on-write: a new array, new rows for the nodes that
 * changed, the other rows shared) with the same `loadId`; a reload from Postgres gets a new `loadId`.
 */
export interface FleetSnapshot {
  /** Changes only when the fleet is read again from Postgres (labels, status or capacity may differ). */
  readonly loadId: number;
  readonly nodes: readonly Readonly<NodeWithAllocation>[];
}

/**
 * Reuses one read of the fleet (nodes + allocations) for `ttlMs` across reconciles, the way Nomad
 * plans against an in-memory snapshot. A cheap fleet-version query (node count + last change) still
 * runs every time, so a node that joins, drains or goes DOWN is seen at once. Placements this process
 * commits are added by replacing the snapshot (never by changing rows a planner may be reading);
 * placements by other schedulers are caught at commit time (capacity check under row locks → stale
 * plan → refresh).
 */
export class NodeSnapshotCache {
  private cached: { at: number; version: string; snapshot: FleetSnapshot; index: Map<string, number> } | null = null;
  private loads = 0;
  /**
   * Resources taken by plans of this process that are being committed right now. Plans computed
   * meanwhile see them, so concurrent reconciles spread over different nodes instead of all
   * picking the same emptiest ones and queueing on their row locks (or failing the capacity check).
   */
  private readonly inFlight = new Map<string, Res>();
  private loading: Promise<FleetSnapshot> | null = null;

  constructor(
    private readonly repo: Pick<SchedulerRepository, 'fleetVersion' | 'nodeSnapshot'>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** The fleet as last loaded (revalidated against the fleet version and the TTL), without plans in flight. */
  async snapshot(): Promise<FleetSnapshot> {
    const version = await this.repo.fleetVersion();
    if (this.cached && this.cached.version === version && this.now() - this.cached.at < this.ttlMs) return this.cached.snapshot;
    if (!this.loading) {
      const at = this.now();
      this.loading = this.repo
        .nodeSnapshot()
        .then((rows) => {
          const nodes = Object.freeze(rows.map(freezeRow));
          const snapshot: FleetSnapshot = Object.freeze({ loadId: ++this.loads, nodes });
          this.cached = { at, version, snapshot, index: new Map(nodes.map((n, i) => [n.id, i])) };
          return snapshot;
        })
        .finally(() => (this.loading = null));
    }
    return this.loading;
  }

  /** Resources of plans of this process still being committed, by node id. */
  inFlightByNode(): ReadonlyMap<string, Res> {
    return this.inFlight;
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

  /**
   * Accounts committed placements (one entry per plan) in a new snapshot that replaces the cached
   * one; snapshots already handed out stay as they were. A copy read during the commit may count
   * them twice: conservative until the TTL.
   */
  allocate(placements: readonly { nodeIds: readonly string[]; res: Res }[]): void {
    const c = this.cached;
    if (!c) return;
    let nodes: Readonly<NodeWithAllocation>[] | null = null;
    for (const { nodeIds, res } of placements) {
      for (const id of nodeIds) {
        const i = c.index.get(id);
        if (i === undefined) continue;
        nodes ??= c.snapshot.nodes.slice();
        const n = nodes[i]!;
        nodes[i] = freezeRow({
          ...n,
          allocated: { cpuMillis: n.allocated.cpuMillis + res.cpuMillis, memoryMiB: n.allocated.memoryMiB + res.memoryMiB, pids: n.allocated.pids + res.pids },
        });
      }
    }
    if (nodes) this.cached = { ...c, snapshot: Object.freeze({ loadId: c.snapshot.loadId, nodes: Object.freeze(nodes) }) };
  }
}

function freezeRow(n: NodeWithAllocation): Readonly<NodeWithAllocation> {
  Object.freeze(n.allocated);
  return Object.freeze(n);
}
