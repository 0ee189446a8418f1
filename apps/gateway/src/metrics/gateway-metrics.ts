import { LATENCY_BUCKETS_MS } from '@berth/contracts';
import { Counter, Gauge, Histogram, Registry } from '@berth/observability';

/** The request-duration histogram's bounds (seconds): the same ones the per-minute traffic history uses. */
const DURATION_BUCKETS = LATENCY_BUCKETS_MS.map((ms) => ms / 1000);

/** Prometheus metrics of the gateway; `service` labels are `<project>/<service>`. */
export function createGatewayMetrics(registry: Registry) {
  return {
    inflight: new Gauge({
      name: 'berth_gateway_inflight_requests',
      help: 'Requests in flight per service (including requests held while the service starts)',
      labelNames: ['service'] as const,
      registers: [registry],
    }),
    replicaInflight: new Gauge({
      name: 'berth_gateway_replica_inflight_requests',
      help: 'Requests in flight per replica',
      labelNames: ['service', 'replica'] as const,
      registers: [registry],
    }),
    requests: new Counter({
      name: 'berth_gateway_requests_total',
      help: 'Requests answered per service and status code',
      labelNames: ['service', 'code'] as const,
      registers: [registry],
    }),
    duration: new Histogram({
      name: 'berth_gateway_request_duration_seconds',
      help: 'Time from request to the end of the response, per service',
      labelNames: ['service'] as const,
      buckets: DURATION_BUCKETS,
      registers: [registry],
    }),
    coldStart: new Histogram({
      name: 'berth_gateway_cold_start_seconds',
      help: 'Time from the first request held for a scaled-to-zero service until it was forwarded',
      labelNames: ['service'] as const,
      buckets: [0.1, 0.25, 0.5, 1, 2, 3, 5, 7.5, 10, 15, 30],
      registers: [registry],
    }),
    retries: new Counter({
      name: 'berth_gateway_upstream_retries_total',
      help: 'Requests retried on another replica after a connection failure',
      labelNames: ['service'] as const,
      registers: [registry],
    }),
    unknownHostsHeld: new Gauge({
      name: 'berth_gateway_unknown_host_held_requests',
      help: 'Requests held right now for a host with no route entry yet (waiting for the entry, see BERTH_GATEWAY_UNKNOWN_HOST_HOLD_MS)',
      registers: [registry],
    }),
    unknownHosts: new Counter({
      name: 'berth_gateway_unknown_host_requests_total',
      help: 'Requests for a host with no route entry, by outcome: found (routed after the hold), not_found (404 after the hold), negative (404 without holding, the host just ended a hold), rejected (404 at once, too many held), gone (the client left)',
      labelNames: ['outcome'] as const,
      registers: [registry],
    }),
    wakes: new Counter({
      name: 'berth_gateway_wakes_total',
      help: 'Wake-ups sent for scaled-to-zero services',
      labelNames: ['service'] as const,
      registers: [registry],
    }),
  };
}
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;

interface ServiceStats {
  codes: Map<number, number>;
  buckets: Float64Array;
  sum: number;
  count: number;
}

/** prom-client's histogram series as stored in `hashMap` (stable across prom-client 15.x). */
interface HistogramSeries {
  labels: Record<string, string>;
  bucketValues: Record<number, number>;
  sum: number;
  count: number;
}

/**
 * Per-request accounting without prom-client on the hot path: `record` only bumps plain numbers in a
 * per-service record; the pending counts are folded into `requests` and `duration` when they are
 * collected (a scrape or `.get()`). prom-client's label hashing and validation per request cost more
 * than the rest of the gateway's own bookkeeping.
 */
export class RequestStats {
  private pending = new Map<string, ServiceStats>();

  constructor(private readonly metrics: GatewayMetrics) {
    const requests = metrics.requests as unknown as { collect?: () => void };
    const duration = metrics.duration as unknown as { collect?: () => void };
    requests.collect = () => this.flush();
    duration.collect = () => this.flush();
  }

  record(service: string, statusCode: number, seconds: number): void {
    let s = this.pending.get(service);
    if (s === undefined) {
      s = { codes: new Map(), buckets: new Float64Array(DURATION_BUCKETS.length), sum: 0, count: 0 };
      this.pending.set(service, s);
    }
    s.codes.set(statusCode, (s.codes.get(statusCode) ?? 0) + 1);
    s.sum += seconds;
    s.count++;
    for (let i = 0; i < DURATION_BUCKETS.length; i++) {
      if (seconds <= DURATION_BUCKETS[i]) {
        s.buckets[i]++;
        break;
      }
    }
  }

  flush(): void {
    if (this.pending.size === 0) return;
    const pending = this.pending;
    this.pending = new Map();
    const hist = this.metrics.duration as unknown as { hashMap: Record<string, HistogramSeries> };
    for (const [service, s] of pending) {
      for (const [code, n] of s.codes) this.metrics.requests.inc({ service, code: String(code) }, n);
      let series = Object.values(hist.hashMap).find((e) => e.labels.service === service);
      if (!series) {
        this.metrics.duration.zero({ service });
        series = Object.values(hist.hashMap).find((e) => e.labels.service === service);
      }
      if (!series) throw new Error('prom-client histogram internals changed: no series after zero()');
      series.sum += s.sum;
      series.count += s.count;
      for (let i = 0; i < DURATION_BUCKETS.length; i++) series.bucketValues[DURATION_BUCKETS[i]] += s.buckets[i];
    }
  }
}

