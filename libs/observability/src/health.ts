import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

/** A readiness dependency: resolves when healthy, throws (or rejects) with the reason otherwise. */
export type HealthCheck = { name: string; check: () => Promise<unknown> };

export interface HealthReport {
  status: 'ok' | 'error';
  checks: Record<string, { status: 'ok' | 'error'; error?: string; ms: number }>;
}

export async function runChecks(checks: HealthCheck[], timeoutMs = 2000): Promise<HealthReport> {
  const out: HealthReport = { status: 'ok', checks: {} };
  await Promise.all(
    checks.map(async (c) => {
      const t0 = performance.now();
      try {
        await Promise.race([
          c.check(),
          new Promise((_, rej) => setTimeout(() => rej(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs).unref()),
        ]);
        out.checks[c.name] = { status: 'ok', ms: Math.round(performance.now() - t0) };
      } catch (e) {
        out.status = 'error';
        out.checks[c.name] = { status: 'error', error: (e as Error).message, ms: Math.round(performance.now() - t0) };
      }
    }),
  );
  return out;
}

/**
 * Handles GET /healthz (process alive), /readyz (dependencies reachable) and /metrics.
 * Returns false when the path is not one of them, so it can sit in front of another handler.
 */
export function handleOps(
  req: http.IncomingMessage,
  res: http.ServerResponse,
  opts: { app: string; registry: Registry; checks: HealthCheck[] },
): boolean {
  const path = (req.url ?? '/').split('?')[0];
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  if (path === '/healthz') {
    send(res, 200, { status: 'ok', app: opts.app });
    return true;
  }
  if (path === '/readyz') {
    runChecks(opts.checks).then(
      (r) => send(res, r.status === 'ok' ? 200 : 503, { app: opts.app, ...r }),
      (e) => send(res, 503, { app: opts.app, status: 'error', error: String(e) }),
    );
    return true;
  }
  if (path === '/metrics') {
    opts.registry.metrics().then(
      (text) => {
        res.writeHead(200, { 'content-type': opts.registry.contentType });
        res.end(text);
      },
      (e) => send(res, 500, { error: String(e) }),
    );
    return true;
  }
  return false;
}

function send(res: http.ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** A small server with only the ops endpoints, for processes whose main job is not HTTP (scheduler, agent). */
export async function startOpsServer(opts: {
  app: string;
  host: string;
  port: number;
  registry: Registry;
  checks: HealthCheck[];
}): Promise<{ server: http.Server; port: number; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    if (!handleOps(req, res, opts)) send(res, 404, { error: { code: 'NOT_FOUND', message: `no route ${req.url}` } });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  return { server, port, close: () => new Promise((r) => server.close(() => r())) };
}
