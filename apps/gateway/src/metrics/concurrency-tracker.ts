/**
 * In-flight requests per service, and their time-weighted average since the last sample: a request that
 * was in flight for 300 ms of a 1 s interval adds 0.3. The autoscaler sizes on these averages (like
 * Knative's queue-proxy), so short requests still show up as load. Time is passed in.
 */
export class ConcurrencyTracker {
  private readonly services = new Map<string, { inflight: number; area: number; since: number }>();
  private intervalStart: number;

  constructor(now: number) {
    this.intervalStart = now;
  }

  begin(serviceId: string, now: number): void {
    const s = this.advance(serviceId, now);
    s.inflight++;
  }

  end(serviceId: string, now: number): void {
    const s = this.advance(serviceId, now);
    s.inflight = Math.max(0, s.inflight - 1);
  }

  inflight(serviceId: string): number {
    return this.services.get(serviceId)?.inflight ?? 0;
  }

  /** Average in-flight per service over [last sample, now], then starts a new interval. */
  sample(now: number): Map<string, number> {
    const span = Math.max(1, now - this.intervalStart);
    const out = new Map<string, number>();
    for (const [id, s] of this.services) {
      this.advance(id, now);
      out.set(id, s.area / span);
      s.area = 0;
      // Forget services with nothing in flight once their zero sample has been reported.
      if (s.inflight === 0 && out.get(id) === 0) this.services.delete(id);
    }
    this.intervalStart = now;
    return out;
  }

  private advance(serviceId: string, now: number) {
    let s = this.services.get(serviceId);
    if (!s) {
      s = { inflight: 0, area: 0, since: now };
      this.services.set(serviceId, s);
    }
    if (now > s.since) {
      s.area += s.inflight * (now - s.since);
      s.since = now;
    }
    return s;
  }
}
