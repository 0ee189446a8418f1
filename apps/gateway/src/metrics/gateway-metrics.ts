import { Counter, Gauge, Histogram, Registry } from '@berth/observability';

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
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
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
    wakes: new Counter({
      name: 'berth_gateway_wakes_total',
      help: 'Wake-ups sent for scaled-to-zero services',
      labelNames: ['service'] as const,
      registers: [registry],
    }),
  };
}
export type GatewayMetrics = ReturnType<typeof createGatewayMetrics>;
