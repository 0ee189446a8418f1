import cluster from 'node:cluster';
import { loadConfigOrExit } from '@berth/config';
import { HealthReport, Logger, createLogger, createMetricsRegistry, exitOnStartupError, onShutdown, runChecks, startOpsServer } from '@berth/observability';
import Redis from 'ioredis';
import { AggregatorRegistry } from 'prom-client';
import { Msg, PrimaryMessage, WorkerMessage, isMessage } from './cluster/messages';
import { runPrimary } from './cluster/primary';
import { GatewayConfig, gatewayConfigSchema } from './config';
import { Gateway } from './gateway';

/**
 * One process (BERTH_GATEWAY_WORKERS=1): gateway + ops server here. Several: this process becomes the
 * cluster primary (ops port, aggregation, restarts) and each forked worker runs a gateway.
 */
async function main() {
  const config = loadConfigOrExit(gatewayConfigSchema, 'gateway');
  const log = createLogger('gateway', config.LOG_LEVEL);
  if (cluster.isPrimary && config.BERTH_GATEWAY_WORKERS > 1) return runPrimary(config, log);
  const worker = cluster.isWorker ? Number(process.env.BERTH_GATEWAY_WORKER_INDEX ?? cluster.worker?.id ?? 0) : null;
  return runGateway(config, worker === null ? log : log.child({ worker }), worker);
}

async function runGateway(config: GatewayConfig, log: Logger, worker: number | null) {
  const registry = createMetricsRegistry('gateway');
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const subscriber = new Redis(config.REDIS_URL, { maxRetriesPerRequest: null });
  const gatewayId = worker === null ? config.BERTH_GATEWAY_ID : `${config.BERTH_GATEWAY_ID}-w${worker}`;
  const gateway = new Gateway({
    options: {
      baseDomain: config.BERTH_BASE_DOMAIN,
      gatewayId,
      keyPrefix: config.BERTH_REDIS_KEY_PREFIX,
      bullPrefix: config.BERTH_QUEUE_PREFIX,
      holdTimeoutMs: config.BERTH_GATEWAY_HOLD_TIMEOUT_MS,
      retryAfterS: config.BERTH_GATEWAY_RETRY_AFTER_S,
      maxAttempts: config.BERTH_GATEWAY_MAX_ATTEMPTS,
      retryBodyLimitBytes: config.BERTH_GATEWAY_RETRY_BODY_LIMIT_BYTES,
      routesRefreshMs: config.BERTH_GATEWAY_ROUTES_REFRESH_MS,
      concurrencyReportMs: config.BERTH_GATEWAY_CONCURRENCY_REPORT_MS,
      metricsFlushMs: config.BERTH_GATEWAY_METRICS_FLUSH_MS,
      upstreamHeadersTimeoutMs: config.BERTH_GATEWAY_UPSTREAM_HEADERS_TIMEOUT_MS,
      upstreamConnectTimeoutMs: 2000,
      trustForwarded: config.BERTH_GATEWAY_TRUST_FORWARDED,
      clientHeadersTimeoutMs: config.BERTH_GATEWAY_CLIENT_HEADERS_TIMEOUT_MS,
      clientKeepAliveTimeoutMs: config.BERTH_GATEWAY_CLIENT_KEEPALIVE_TIMEOUT_MS,
      unknownHostHoldMs: config.BERTH_GATEWAY_UNKNOWN_HOST_HOLD_MS,
      unknownHostMaxHeld: config.BERTH_GATEWAY_UNKNOWN_HOST_MAX_HELD,
      unknownHostNegativeMs: config.BERTH_GATEWAY_UNKNOWN_HOST_NEGATIVE_MS,
    },
    redis,
    subscriber,
    log,
    registry,
  });

  if (worker === null) {
    const ops = await startOpsServer({
      app: 'gateway',
      host: config.BERTH_GATEWAY_HOST,
      port: config.BERTH_GATEWAY_OPS_PORT,
      registry,
      checks: gateway.readinessChecks(),
    });
    const port = await gateway.start(config.BERTH_GATEWAY_PORT, config.BERTH_GATEWAY_HOST);
    log.info({ url: `http://${config.BERTH_GATEWAY_HOST}:${port}`, ops: ops.port, gatewayId }, 'gateway listening');
    onShutdown(log, [() => redis.quit(), () => subscriber.quit(), () => ops.close(), () => gateway.close(config.BERTH_GATEWAY_DRAIN_MS)]);
    return;
  }

  // Cluster worker: the primary serves the ops port; it collects this registry (prom-client's cluster
  // protocol) and asks for readiness over IPC.
  new AggregatorRegistry(); // installs prom-client's worker-side listener
  AggregatorRegistry.setRegistries([registry]);
  const reply = (m: WorkerMessage) => process.send?.(m);
  let stopping = false;
  const stop = async (reason: string) => {
    if (stopping) return; // the primary SIGKILLs a worker that outlives the drain
    stopping = true;
    log.info({ reason }, 'gateway worker shutting down');
    for (const close of [() => gateway.close(config.BERTH_GATEWAY_DRAIN_MS), () => subscriber.quit(), () => redis.quit()]) {
      try {
        await close();
      } catch (e) {
        log.warn({ err: e }, 'error while shutting down');
      }
    }
    process.exit(0);
  };
  process.on('message', (m: PrimaryMessage) => {
    if (!isMessage(m)) return;
    if (m.type === Msg.readyReq) {
      void runChecks(gateway.readinessChecks()).then(
        (report) => reply({ type: Msg.readyRes, id: m.id, report }),
        (e) => reply({ type: Msg.readyRes, id: m.id, report: { status: 'error', checks: { gateway: { status: 'error', error: String(e), ms: 0 } } } satisfies HealthReport }),
      );
    } else if (m.type === Msg.shutdown) void stop('primary');
  });
  // A Ctrl-C reaches every process of the group; the primary's shutdown message then finds us stopping.
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));
  // The primary went away without telling us (killed): do not linger as an orphan.
  process.once('disconnect', () => void stop('primary gone'));
  const port = await gateway.start(config.BERTH_GATEWAY_PORT, config.BERTH_GATEWAY_HOST);
  log.debug({ port, gatewayId }, 'gateway worker listening');
  reply({ type: Msg.listening, port });
}

main().catch(exitOnStartupError('gateway'));
