/**
 * A few hours of per-minute traffic history per service, for the dashboard's metrics tab and
 * `GET /v1/services/:name/metrics`.
 *
 * Stored in Redis, one hash per service and minute (`RedisKey.serviceMetrics`): gateways add their
 * counts with HINCRBY (several gateways sum), the scheduler's autoscaler sets the minute's peak of ready replicas.
 * Keys expire after `SERVICE_METRICS_RETENTION_MINUTES`. History is not rebuilt after Redis loses its
 * data: the charts restart from that minute (the Prometheus endpoints of each process are the
 * durable source for anyone who scrapes them).
 */
import { z } from 'zod';

export const SERVICE_METRICS_RETENTION_MINUTES = 360;

/** Upper bounds (ms) of the request latency buckets; a last bucket holds everything slower. */
export const LATENCY_BUCKETS_MS = [1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000] as const;
/** Upper bounds (ms) of the cold-start buckets. */
export const COLD_START_BUCKETS_MS = [50, 100, 200, 300, 500, 1000, 2000, 5000, 10000, 30000] as const;

/** Hash fields: written by gateways (HINCRBY) and the scheduler (HSET `r`). */
export const MetricsField = {
  requests: 'n',
  errors5xx: 'e5',
  errors4xx: 'e4',
  /** `l<i>`: requests in latency bucket i (i = LATENCY_BUCKETS_MS.length: slower than the last bound). */
  latencyBucket: (i: number) => `l${i}`,
  coldStarts: 'c',
  coldStartBucket: (i: number) => `c${i}`,
  /** The most replicas ready at once in that minute, as the autoscaler's ticks saw them. */
  replicasReady: 'r',
} as const;

/** Index of the bucket a value falls in (the last index for values above every bound). */
export function bucketIndex(bounds: readonly number[], value: number): number {
  for (let i = 0; i < bounds.length; i++) if (value <= bounds[i]) return i;
  return bounds.length;
}

/**
 * The q-quantile (0..1) of a bucketed distribution, interpolated inside its bucket as Prometheus'
 * histogram_quantile does; null without observations. Values in the overflow bucket report the last bound.
 */
export function bucketQuantile(bounds: readonly number[], counts: readonly number[], q: number): number | null {
  const total = counts.reduce((a, b) => a + b, 0);
  if (total === 0) return null;
  const rank = q * total;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] === 0) continue;
    if (seen + counts[i] >= rank) {
      if (i >= bounds.length) return bounds[bounds.length - 1];
      const lower = i === 0 ? 0 : bounds[i - 1];
      const upper = bounds[i];
      return round2(lower + (upper - lower) * ((rank - seen) / counts[i]));
    }
    seen += counts[i];
  }
  return bounds[bounds.length - 1];
}

const round2 = (n: number) => Math.round(n * 100) / 100;

export const ServiceMetricsPointSchema = z.object({
  t: z.string().describe('start of the minute (ISO 8601)'),
  requests: z.int(),
  requestsPerSecond: z.number(),
  errors5xx: z.int(),
  latencyP50Ms: z.number().nullable(),
  latencyP95Ms: z.number().nullable(),
  replicasReady: z.int().nullable().describe('the most replicas ready at once in that minute; null: the autoscaler wrote no sample'),
  coldStarts: z.int(),
  coldStartP50Ms: z.number().nullable(),
});
export type ServiceMetricsPoint = z.infer<typeof ServiceMetricsPointSchema>;

export const ServiceMetricsSchema = z.object({
  service: z.string(),
  stepSeconds: z.literal(60),
  points: z.array(ServiceMetricsPointSchema).describe('one per minute, oldest first'),
});
export type ServiceMetrics = z.infer<typeof ServiceMetricsSchema>;

/** One minute's point from its hash (HGETALL; empty object when the key does not exist). */
export function metricsPoint(minute: number, hash: Record<string, string>): ServiceMetricsPoint {
  const num = (f: string) => {
    const v = Number(hash[f] ?? 0);
    return Number.isFinite(v) ? v : 0;
  };
  const latency = Array.from({ length: LATENCY_BUCKETS_MS.length + 1 }, (_, i) => num(MetricsField.latencyBucket(i)));
  const cold = Array.from({ length: COLD_START_BUCKETS_MS.length + 1 }, (_, i) => num(MetricsField.coldStartBucket(i)));
  const requests = num(MetricsField.requests);
  return {
    t: new Date(minute * 60_000).toISOString(),
    requests,
    requestsPerSecond: round2(requests / 60),
    errors5xx: num(MetricsField.errors5xx),
    latencyP50Ms: bucketQuantile(LATENCY_BUCKETS_MS, latency, 0.5),
    latencyP95Ms: bucketQuantile(LATENCY_BUCKETS_MS, latency, 0.95),
    replicasReady: hash[MetricsField.replicasReady] === undefined ? null : num(MetricsField.replicasReady),
    coldStarts: num(MetricsField.coldStarts),
    coldStartP50Ms: bucketQuantile(COLD_START_BUCKETS_MS, cold, 0.5),
  };
}

/** The minute number (ms since the epoch / 60 000) a time falls in. */
export const minuteOf = (ms: number) => Math.floor(ms / 60_000);
