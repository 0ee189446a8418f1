import type { RouteEndpoint } from '@berth/contracts';

/**
 * Picks the replica with the fewest requests in flight through this gateway, ties broken at random,
 * so a slow replica stops receiving new work while its queue is long (round robin would keep feeding it).
 * Replicas that just refused a connection are skipped for `ejectMs` unless nothing else is left.
 */
export class LeastOutstandingBalancer {
  private readonly inflight = new Map<string, number>();
  private readonly ejectedUntil = new Map<string, number>();

  constructor(
    private readonly opts: { ejectMs: number; now: () => number; random: () => number } = {
      ejectMs: 2000,
      now: Date.now,
      random: Math.random,
    },
  ) {}

  pick(endpoints: readonly RouteEndpoint[], exclude: ReadonlySet<string> = new Set()): RouteEndpoint | null {
    const now = this.opts.now();
    let best: RouteEndpoint | null = null;
    let bestLoad = Infinity;
    let ties = 0;
    let fallback: RouteEndpoint | null = null;
    for (const ep of endpoints) {
      if (exclude.has(ep.replicaId)) continue;
      const until = this.ejectedUntil.get(ep.replicaId);
      if (until !== undefined) {
        if (until > now) {
          fallback ??= ep;
          continue;
        }
        this.ejectedUntil.delete(ep.replicaId);
      }
      const load = this.inflight.get(ep.replicaId) ?? 0;
      if (load < bestLoad) {
        best = ep;
        bestLoad = load;
        ties = 1;
      } else if (load === bestLoad) {
        // Reservoir sampling over the tied replicas: each is chosen with probability 1/ties.
        ties++;
        if (this.opts.random() * ties < 1) best = ep;
      }
    }
    return best ?? fallback;
  }

  acquire(replicaId: string): void {
    this.inflight.set(replicaId, (this.inflight.get(replicaId) ?? 0) + 1);
  }

  release(replicaId: string): void {
    const n = (this.inflight.get(replicaId) ?? 0) - 1;
    if (n <= 0) this.inflight.delete(replicaId);
    else this.inflight.set(replicaId, n);
  }

  eject(replicaId: string): void {
    this.ejectedUntil.set(replicaId, this.opts.now() + this.opts.ejectMs);
  }

  inflightOf(replicaId: string): number {
    return this.inflight.get(replicaId) ?? 0;
  }

  inflightByReplica(): ReadonlyMap<string, number> {
    return this.inflight;
  }
}
