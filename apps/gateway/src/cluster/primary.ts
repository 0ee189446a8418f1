import cluster, { type Worker } from 'node:cluster';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { HealthReport, Logger } from '@berth/observability';
import { AggregatorRegistry } from 'prom-client';
import type { GatewayConfig } from '../config';
import { Msg, WorkerMessage, isMessage } from './messages';

/**
 * The cluster primary: forks BERTH_GATEWAY_WORKERS gateway workers that share the proxy listener
 * (kernel-distributed accepts with `none`, primary round robin with `rr`), restarts a worker that dies,
 * and serves the ops port for all of them:
 * - `/healthz`: the primary is alive (and how many workers listen);
 * - `/readyz`: every worker listens and passes its own checks (Redis, routing table loaded);
 * - `/metrics`: the workers' registries aggregated by prom-client (counters, histograms and gauges summed).
 * The primary proxies nothing and holds no Redis connection.
 */
export async function runPrimary(config: GatewayConfig, log: Logger): Promise<void> {
  const count = config.BERTH_GATEWAY_WORKERS;
  cluster.schedulingPolicy = config.BERTH_GATEWAY_SCHEDULING === 'rr' ? cluster.SCHED_RR : cluster.SCHED_NONE;
  const aggregator = new AggregatorRegistry();
  const workers = new Map<number, Worker>();
  const listening = new Set<number>();
  const pending = new Map<number, (r: HealthReport) => void>();
  let nextId = 1;
  let stopping = false;
  let started = false;
  let onStarted: { resolve: (port: number) => void; reject: (e: Error) => void } | null = null;
  let port = 0;

  const fork = (index: number) => {
    const w = cluster.fork({ BERTH_GATEWAY_WORKER_INDEX: String(index) });
    workers.set(index, w);
    w.on('message', (m: WorkerMessage) => {
      if (!isMessage(m)) return;
      if (m.type === Msg.listening) {
        port = m.port;
        listening.add(index);
        if (!started && listening.size === count) {
          started = true;
          onStarted?.resolve(port);
        }
      } else if (m.type === Msg.readyRes) {
        pending.get(m.id)?.(m.report);
        pending.delete(m.id);
      }
    });
    w.on('exit', (code, signal) => {
      listening.delete(index);
      if (workers.get(index) === w) workers.delete(index);
      if (stopping) return;
      if (!started) {
        onStarted?.reject(new Error(`gateway worker ${index} exited during start-up (code ${code}, signal ${signal})`));
        return;
      }
      log.error({ worker: index, code, signal }, 'gateway worker exited; starting a new one in 1 s');
      setTimeout(() => {
        if (!stopping) fork(index);
      }, 1000);
    });
  };

  const workerReport = (w: Worker): Promise<HealthReport> =>
    new Promise((resolve) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve({ status: 'error', checks: { worker: { status: 'error', error: 'no answer within 2000 ms', ms: 2000 } } });
      }, 2000);
      pending.set(id, (r) => {
        clearTimeout(timer);
        resolve(r);
      });
      try {
        w.send({ type: Msg.readyReq, id });
      } catch (e) {
        pending.delete(id);
        clearTimeout(timer);
        resolve({ status: 'error', checks: { worker: { status: 'error', error: String(e), ms: 0 } } });
      }
    });

  const readiness = async (): Promise<HealthReport> => {
    const out: HealthReport = { status: 'ok', checks: {} };
    const up = listening.size;
    out.checks.workers = up === count ? { status: 'ok', ms: 0 } : { status: 'error', error: `${up} of ${count} workers listening`, ms: 0 };
    if (up !== count) out.status = 'error';
    const reports = await Promise.all([...workers].map(async ([index, w]) => [index, await workerReport(w)] as const));
    for (const [index, r] of reports) {
      if (r.status !== 'ok') out.status = 'error';
      for (const [name, c] of Object.entries(r.checks)) out.checks[`w${index}.${name}`] = c;
    }
    return out;
  };

  const send = (res: http.ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const ops = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, { error: { code: 'METHOD_NOT_ALLOWED', message: 'GET only' } });
    if (path === '/healthz') return send(res, 200, { status: 'ok', app: 'gateway', workers: listening.size, of: count });
    if (path === '/readyz') {
      return void readiness().then(
        (r) => send(res, r.status === 'ok' ? 200 : 503, { app: 'gateway', ...r }),
        (e) => send(res, 503, { app: 'gateway', status: 'error', error: String(e) }),
      );
    }
    if (path === '/metrics') {
      return void aggregator.clusterMetrics().then(
        (text) => {
          res.writeHead(200, { 'content-type': aggregator.contentType });
          res.end(text);
        },
        (e) => send(res, 500, { error: { code: 'METRICS_FAILED', message: String(e) } }),
      );
    }
    send(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${req.url}` } });
  });
  await new Promise<void>((resolve, reject) => {
    ops.once('error', reject);
    ops.listen(config.BERTH_GATEWAY_OPS_PORT, config.BERTH_GATEWAY_HOST, () => resolve());
  });

  const startedPort = new Promise<number>((resolve, reject) => (onStarted = { resolve, reject }));
  for (let i = 1; i <= count; i++) fork(i);

  const stop = async (signal: string) => {
    if (stopping) {
      for (const w of workers.values()) w.process.kill('SIGKILL');
      process.exit(1);
    }
    stopping = true;
    log.info({ signal }, 'shutting down gateway workers');
    const exits = [...workers.values()].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.isDead()) return resolve();
          const timer = setTimeout(() => {
            w.process.kill('SIGKILL');
          }, config.BERTH_GATEWAY_DRAIN_MS + 5000);
          w.once('exit', () => {
            clearTimeout(timer);
            resolve();
          });
          try {
            w.send({ type: Msg.shutdown });
          } catch {
            w.process.kill('SIGTERM');
          }
        }),
    );
    await Promise.all(exits);
    await new Promise<void>((r) => ops.close(() => r()));
    process.exit(0);
  };
  process.once('SIGTERM', () => void stop('SIGTERM'));
  process.once('SIGINT', () => void stop('SIGINT'));

  try {
    const p = await startedPort;
    log.info(
      { url: `http://${config.BERTH_GATEWAY_HOST}:${p}`, ops: (ops.address() as AddressInfo).port, workers: count, scheduling: config.BERTH_GATEWAY_SCHEDULING },
      'gateway listening',
    );
  } catch (e) {
    stopping = true;
    for (const w of workers.values()) w.process.kill('SIGKILL');
    ops.close();
    throw e;
  }
}
