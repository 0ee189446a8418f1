import { loadConfigOrExit } from '@berth/config';
import { createLogger, createMetricsRegistry, exitOnStartupError, onShutdown, startOpsServer } from '@berth/observability';
import Redis from 'ioredis';
import { gatewayConfigSchema } from './config';
import { Gateway } from './gateway';

async function main() {
  const config = loadConfigOrExit(gatewayConfigSchema, 'gateway');
  const log = createLogger('gateway', config.LOG_LEVEL);
  const registry = createMetricsRegistry('gateway');
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const subscriber = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const gateway = new Gateway({
    options: {
      baseDomain: config.BERTH_BASE_DOMAIN,
      gatewayId: config.BERTH_GATEWAY_ID,
      keyPrefix: config.BERTH_REDIS_KEY_PREFIX,
      bullPrefix: config.BERTH_QUEUE_PREFIX,
      holdTimeoutMs: config.BERTH_GATEWAY_HOLD_TIMEOUT_MS,
      retryAfterS: config.BERTH_GATEWAY_RETRY_AFTER_S,
      maxAttempts: config.BERTH_GATEWAY_MAX_ATTEMPTS,
      retryBodyLimitBytes: config.BERTH_GATEWAY_RETRY_BODY_LIMIT_BYTES,
      routesRefreshMs: config.BERTH_GATEWAY_ROUTES_REFRESH_MS,
      concurrencyReportMs: config.BERTH_GATEWAY_CONCURRENCY_REPORT_MS,
      upstreamHeadersTimeoutMs: config.BERTH_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_MS,
      upstreamConnectTimeoutMs: 2000,
      trustForwarded: config.BERTH_GATEWAY_TRUST_FORWARDED,
    },
    redis,
    subscriber,
    log,
    registry,
  });
  const ops = await startOpsServer({
    app: 'gateway',
    host: config.BERTH_GATEWAY_HOST,
    port: config.BERTH_GATEWAY_OPS_PORT,
    registry,
    checks: gateway.readinessChecks(),
  });
  const port = await gateway.start(config.BERTH_GATEWAY_PORT, config.BERTH_GATEWAY_HOST);
  log.info({ url: `http://${config.BERTH_GATEWAY_HOST}:${port}`, ops: ops.port, gatewayId: config.BERTH_GATEWAY_ID }, 'gateway listening');
  onShutdown(log, [() => redis.quit(), () => subscriber.quit(), () => ops.close(), () => gateway.close(config.BERTH_GATEWAY_DRAIN_MS)]);
}

main().catch(exitOnStartupError('gateway'));
