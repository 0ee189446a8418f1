import type { RouteEndpoint } from '@berth/contracts';
import { Pool } from 'undici';

export const originOf = (ep: RouteEndpoint) => `http://${ep.address.includes(':') ? `[${ep.address}]` : ep.address}:${ep.port}`;

/**
 * One undici Pool (keep-alive connections) per replica address. Pools of replicas that left the
 * routing table are closed gracefully (in-flight requests finish) by `retain`.
 */
export class UpstreamPools {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly opts: { headersTimeoutMs: number; connectTimeoutMs: number }) {}

  get(ep: RouteEndpoint): Pool {
    const origin = originOf(ep);
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new Pool(origin, {
        // Streaming responses may stay open indefinitely; only the wait for headers is bounded.
        headersTimeout: this.opts.headersTimeoutMs,
        bodyTimeout: 0,
        connectTimeout: this.opts.connectTimeoutMs,
        keepAliveTimeout: 4000,
        pipelining: 1,
      });
      this.pools.set(origin, pool);
    }
    return pool;
  }

  /** Closes pools whose origin is not in `live`. */
  retain(live: Set<string>): void {
    for (const [origin, pool] of this.pools) {
      if (!live.has(origin)) {
        this.pools.delete(origin);
        void pool.close().catch(() => undefined);
      }
    }
  }

  async close(): Promise<void> {
    const all = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(all.map((p) => p.destroy().catch(() => undefined)));
  }
}
