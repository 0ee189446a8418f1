import os from 'node:os';
import { z } from 'zod';
import { bool, commonSchema, durationMs, port } from '@berth/config';

export const gatewayConfigSchema = commonSchema.extend({
  BERTH_GATEWAY_HOST: z.string().default('127.0.0.1'),
  BERTH_GATEWAY_PORT: port(8000),
  BERTH_GATEWAY_OPS_PORT: port(9100),
  /** Hosts are <service>.<project>.<base-domain>. */
  BERTH_BASE_DOMAIN: z.string().default('localhost'),
  /** Names this gateway in the concurrency samples it publishes; must be unique per running gateway. */
  BERTH_GATEWAY_ID: z
    .string()
    .regex(/^[A-Za-z0-9._-]+$/, 'letters, digits, . _ - only')
    .default(`${os.hostname()}-${process.pid}`),
  /** Prefix on the Redis keys and channel of the routing table and concurrency samples (the scheduler must use the same). */
  BERTH_REDIS_KEY_PREFIX: z.string().default(''),
  /** BullMQ key prefix of the autoscale queue the gateway sends wake-ups to. */
  BERTH_QUEUE_PREFIX: z.string().min(1).default('bull'),
  /** How long a request is held while its service starts (scale from zero) before a 503. */
  BERTH_GATEWAY_HOLD_TIMEOUT_MS: durationMs(10_000),
  /**
   * A request for a host with no route entry yet (a service created a moment ago whose entry has not
   * reached this gateway) waits up to this long for one before 404 SERVICE_NOT_FOUND. 0 = 404 at once.
   */
  BERTH_GATEWAY_UNKNOWN_HOST_HOLD_MS: durationMs(3000),
  /** Requests held at once for unknown hosts (per gateway process); more get 404 at once. */
  BERTH_GATEWAY_UNKNOWN_HOST_MAX_HELD: z.coerce.number().int().min(1).max(100_000).default(256),
  /** After a hold for a host ended with 404, that host answers 404 without holding (after one Redis read) for this long. */
  BERTH_GATEWAY_UNKNOWN_HOST_NEGATIVE_MS: durationMs(1000),
  /** Retry-After (seconds) on 503 answers. */
  BERTH_GATEWAY_RETRY_AFTER_S: z.coerce.number().int().min(0).default(5),
  /** Attempts per idempotent request when an upstream refuses or resets before answering. */
  BERTH_GATEWAY_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(10).default(3),
  /** Idempotent requests with a body up to this size are buffered so they can be retried. */
  BERTH_GATEWAY_RETRY_BODY_LIMIT_BYTES: z.coerce.number().int().min(0).default(64 * 1024),
  /** Full reload of the routing table, a safety net under the pub/sub change notices. */
  BERTH_GATEWAY_ROUTES_REFRESH_MS: durationMs(10_000),
  /** Interval of the concurrency samples published for the autoscaler. */
  BERTH_GATEWAY_CONCURRENCY_REPORT_MS: durationMs(1000),
  /** How often the per-minute traffic history (the dashboard's metrics charts) is added to Redis. */
  BERTH_GATEWAY_METRICS_FLUSH_MS: durationMs(10_000),
  /** Time an upstream has to send response headers. */
  BERTH_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_MS: durationMs(300_000),
  /** A client that has sent part of a request head gets 408 after this long (slow-head clients). */
  BERTH_GATEWAY_CLIENT_HEADERS_TIMEOUT_MS: durationMs(60_000),
  /** Idle keep-alive client connections are closed after this long. */
  BERTH_GATEWAY_CLIENT_KEEPALIVE_TIMEOUT_MS: durationMs(5_000),
  /** On shutdown, in-flight requests get this long to finish before their connections are cut. */
  BERTH_GATEWAY_DRAIN_MS: durationMs(10_000),
  /**
   * Gateway worker processes (node:cluster) sharing the listener; 1 runs the gateway in this process.
   * Each worker is its own gateway instance for balancing and concurrency reports (ids `<id>-w<n>`);
   * the primary serves the ops port and aggregates the workers' metrics and readiness. Default 1: on the
   * 2-core reference machine, where replicas and load share the cores, 2 workers served 0-10 % more at
   * 10-20 % more CPU per request (docs/gateway.md#performance); raise it when the gateway has cores of its own.
   */
  BERTH_GATEWAY_WORKERS: z.coerce.number().int().min(1).max(64).default(1),
  /** How connections reach workers: `none` = the kernel (each worker accepts), `rr` = the primary deals them round robin. */
  BERTH_GATEWAY_SCHEDULING: z.enum(['none', 'rr']).default('none'),
  /** Keep X-Forwarded-Proto/-Host sent by the client (only behind a trusted load balancer). */
  BERTH_GATEWAY_TRUST_FORWARDED: bool(false),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;
