import {
  bucketIndex,
  COLD_START_BUCKETS_MS,
  LATENCY_BUCKETS_MS,
  MetricsField,
  minuteOf,
  RedisKey,
  SERVICE_METRICS_RETENTION_MINUTES,
} from '@berth/contracts';
import type { Logger } from '@berth/observability';
import type Redis from 'ioredis';

/**
 * The gateway's share of each service's per-minute history (libs/contracts service-metrics.ts):
 * requests, 4xx/5xx, latency and cold-start buckets are counted in memory per (service, minute) and
 * added to Redis with HINCRBY every flush interval, so several gateways sum into one hash. A failed
 * flush keeps its counts for the next one (bounded: counts older than the retention are dropped).
 */
export class MetricsHistory {
  private pending = new Map<string, Map<string, number>>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly deps: { redis: Redis; keyPrefix: string; flushMs: number; now: () => number; log: Logger },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush(), this.deps.flushMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.flush();
  }

  request(serviceId: string, status: number, seconds: number): void {
    const f = this.fields(serviceId);
    inc(f, MetricsField.requests);
    if (status >= 500) inc(f, MetricsField.errors5xx);
    else if (status >= 400) inc(f, MetricsField.errors4xx);
    inc(f, MetricsField.latencyBucket(bucketIndex(LATENCY_BUCKETS_MS, seconds * 1000)));
  }

  coldStart(serviceId: string, seconds: number): void {
    const f = this.fields(serviceId);
    inc(f, MetricsField.coldStarts);
    inc(f, MetricsField.coldStartBucket(bucketIndex(COLD_START_BUCKETS_MS, seconds * 1000)));
  }

  /** Adds what was counted since the last flush to Redis; concurrent calls share one flush. */
  flush(): Promise<void> {
    if (!this.flushing) this.flushing = this.doFlush().finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async doFlush(): Promise<void> {
    if (this.pending.size === 0) return;
    const batch = this.pending;
    this.pending = new Map();
    const ttlS = SERVICE_METRICS_RETENTION_MINUTES * 60;
    const multi = this.deps.redis.multi();
    for (const [key, fields] of batch) {
      for (const [field, n] of fields) multi.hincrby(key, field, n);
      multi.expire(key, ttlS);
    }
    try {
      const results = await multi.exec();
      const failed = results?.find(([err]) => err);
      if (failed) throw failed[0];
    } catch (e) {
      // Keep the counts for the next flush (HINCRBY is not idempotent, but a MULTI that failed applied nothing).
      const oldest = minuteOf(this.deps.now()) - SERVICE_METRICS_RETENTION_MINUTES;
      for (const [key, fields] of batch) {
        if (Number(key.slice(key.lastIndexOf(':') + 1)) < oldest) continue;
        const into = this.pending.get(key) ?? new Map<string, number>();
        for (const [field, n] of fields) into.set(field, (into.get(field) ?? 0) + n);
        this.pending.set(key, into);
      }
      this.deps.log.warn({ err: e }, 'could not write the per-minute traffic history; keeping the counts for the next flush');
    }
  }

  private fields(serviceId: string): Map<string, number> {
    const key = `${this.deps.keyPrefix}${RedisKey.serviceMetrics(serviceId, minuteOf(this.deps.now()))}`;
    let f = this.pending.get(key);
    if (f === undefined) this.pending.set(key, (f = new Map()));
    return f;
  }
}

function inc(m: Map<string, number>, field: string): void {
  m.set(field, (m.get(field) ?? 0) + 1);
}
