import http from 'node:http';
import { Writable, type Duplex } from 'node:stream';
import { RouteEntry, routeKey } from '@berth/contracts';
import type { HealthCheck, Logger, Registry } from '@berth/observability';
import type Redis from 'ioredis';
import { ConcurrencyPublisher } from './metrics/concurrency-publisher';
import { ConcurrencyTracker } from './metrics/concurrency-tracker';
import { createGatewayMetrics } from './metrics/gateway-metrics';
import { IDEMPOTENT_METHODS, HeaderMap, addForwardedHeaders, clientAddress, stripHopByHop } from './proxy/headers';
import { LeastOutstandingBalancer } from './proxy/least-outstanding.balancer';
import { UpstreamPools, originOf } from './proxy/upstream-pools';
import { parseServiceHost } from './routing/host';
import { RouteTable, routeTableKeys } from './routing/route-table';
import { Waker } from './wake/waker';

export interface GatewayOptions {
  baseDomain: string;
  gatewayId: string;
  keyPrefix: string;
  bullPrefix: string;
  holdTimeoutMs: number;
  retryAfterS: number;
  maxAttempts: number;
  retryBodyLimitBytes: number;
  routesRefreshMs: number;
  concurrencyReportMs: number;
  upstreamHeadersTimeoutMs: number;
  upstreamConnectTimeoutMs: number;
  trustForwarded: boolean;
}

export interface GatewayDeps {
  options: GatewayOptions;
  /** Commands (routing table reads, concurrency writes) and the BullMQ wake queue. */
  redis: Redis;
  /** Dedicated to the route-change subscription. */
  subscriber: Redis;
  log: Logger;
  registry: Registry;
  now?: () => number;
  random?: () => number;
}

/** Connection failures that happen before the upstream answered anything: safe to retry idempotent requests. */
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_CLOSED',
  'UND_ERR_DESTROYED',
  // The replica closed before the whole (held, see forward) body arrived: it died mid-answer.
  'UND_ERR_RES_CONTENT_LENGTH_MISMATCH',
]);
/** Failures meaning "nothing listens there (now)": skip that replica for a moment. */
const EJECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

const errorCode = (e: unknown): string => {
  const err = e as { code?: string; cause?: { code?: string } };
  return err?.code ?? err?.cause?.code ?? 'UNKNOWN';
};

/**
 * The HTTP ingress: Host → service → a READY replica, chosen by least outstanding requests.
 * Request lifecycle: route lookup (404 when unknown) → concurrency accounting starts → if the service has
 * no READY endpoint: hold (scale from zero / replicas starting, with a wake-up) or 503 → forward with
 * retries of idempotent requests on another replica → accounting ends when the response closes.
 */
export class Gateway {
  readonly server: http.Server;
  readonly routes: RouteTable;
  readonly metrics: ReturnType<typeof createGatewayMetrics>;
  readonly tracker: ConcurrencyTracker;
  readonly balancer: LeastOutstandingBalancer;
  private readonly pools: UpstreamPools;
  private readonly waker: Waker;
  private readonly publisher: ConcurrencyPublisher;
  private readonly coldStarts = new Map<string, object>();
  private readonly now: () => number;
  private readonly opts: GatewayOptions;

  constructor(private readonly deps: GatewayDeps) {
    this.opts = deps.options;
    this.now = deps.now ?? Date.now;
    this.metrics = createGatewayMetrics(deps.registry);
    this.tracker = new ConcurrencyTracker(this.now());
    this.balancer = new LeastOutstandingBalancer({ ejectMs: 2000, now: this.now, random: deps.random ?? Math.random });
    this.pools = new UpstreamPools({ headersTimeoutMs: this.opts.upstreamHeadersTimeoutMs, connectTimeoutMs: this.opts.upstreamConnectTimeoutMs });
    this.routes = new RouteTable({
      redis: deps.redis,
      subscriber: deps.subscriber,
      keys: routeTableKeys(this.opts.keyPrefix),
      refreshMs: this.opts.routesRefreshMs,
      log: deps.log,
    });
    this.routes.subscribe((_key, entry) => {
      if (entry && entry.endpoints.length > 0) this.waker.settled(entry.serviceId);
      this.retainPoolsSoon();
    });
    this.waker = new Waker({
      connection: deps.redis,
      bullPrefix: this.opts.bullPrefix,
      dedupeMs: this.opts.holdTimeoutMs,
      now: this.now,
      log: deps.log,
    });
    this.publisher = new ConcurrencyPublisher({
      redis: deps.redis,
      tracker: this.tracker,
      gatewayId: this.opts.gatewayId,
      keyPrefix: this.opts.keyPrefix,
      intervalMs: this.opts.concurrencyReportMs,
      now: this.now,
      knownServiceIds: () => [...this.routes.all()].map((e) => e.serviceId),
      log: deps.log,
    });
    this.server = http.createServer((req, res) => void this.handle(req, res));
    // Streaming uploads and downloads may last longer than Node's default 5 min request timeout.
    this.server.requestTimeout = 0;
    this.server.on('upgrade', (req, socket, head) => void this.handleUpgrade(req, socket, head));
    this.server.on('clientError', (_err, socket) => {
      if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n');
    });
    this.registerGaugeCollectors();
  }

  /** Readiness: Redis answers and the routing table has been loaded once. */
  readinessChecks(): HealthCheck[] {
    return [
      {
        name: 'redis',
        check: async () => {
          if ((await this.deps.redis.ping()) !== 'PONG') throw new Error('unexpected PING reply');
        },
      },
      {
        name: 'routes',
        check: async () => {
          if (!this.routes.loaded) throw new Error('routing table not loaded yet');
        },
      },
    ];
  }

  async start(port: number, host: string): Promise<number> {
    await this.routes.start();
    this.publisher.start();
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => resolve());
    });
    return (this.server.address() as { port: number }).port;
  }

  /**
   * Stops accepting connections, lets in-flight requests finish for up to `drainMs`, then cuts what is
   * left (long streams, WebSockets) and releases pools and queues.
   */
  async close(drainMs = 0): Promise<void> {
    this.publisher.stop();
    await this.routes.stop();
    await new Promise<void>((r) => {
      const timer = setTimeout(() => this.server.closeAllConnections(), drainMs);
      this.server.close(() => {
        clearTimeout(timer);
        r();
      });
      this.server.closeIdleConnections();
    });
    await this.pools.close();
    await this.waker.close();
  }

  // ------------------------------------------------------------------------------------------ HTTP

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    req.on('error', () => undefined);
    const started = performance.now();
    const host = parseServiceHost(req.headers.host, this.opts.baseDomain);
    if (!host) {
      return sendError(res, 404, 'HOST_NOT_ROUTED', `no service is routed for host "${req.headers.host ?? ''}": expected <service>.<project>.${this.opts.baseDomain}`);
    }
    const key = routeKey(host.project, host.service);
    const entry = this.routes.get(key);
    if (!entry) return sendError(res, 404, 'SERVICE_NOT_FOUND', `no service "${host.service}" in project "${host.project}"`);

    const serviceId = entry.serviceId;
    this.tracker.begin(serviceId, this.now());
    res.once('close', () => {
      this.tracker.end(serviceId, this.now());
      this.metrics.requests.inc({ service: key, code: String(res.statusCode) });
      this.metrics.duration.observe({ service: key }, (performance.now() - started) / 1000);
    });
    try {
      const ready = entry.endpoints.length > 0 ? entry : await this.hold(entry, key, res, (status, code, msg) => sendError(res, status, code, msg, this.opts.retryAfterS));
      if (ready) await this.forward(req, res, key, ready);
    } catch (e) {
      this.deps.log.error({ err: e, service: key }, 'gateway error');
      if (!res.headersSent) sendError(res, 502, 'BAD_GATEWAY', 'the gateway could not forward the request');
      else res.destroy();
    }
  }

  /**
   * No READY endpoint: a scaled-to-zero service (desiredReplicas 0) gets a wake-up and the request waits;
   * so does one whose replicas are starting. Otherwise 503 at once. While held, the request body is not
   * read (TCP backpressure holds the client), so nothing is buffered.
   */
  private async hold(
    entry: RouteEntry,
    key: string,
    closable: { once(ev: 'close', f: () => void): unknown; off(ev: 'close', f: () => void): unknown },
    reject: (status: number, code: string, message: string) => void,
  ): Promise<RouteEntry | null> {
    const scaledToZero = entry.desiredReplicas === 0;
    if (scaledToZero) {
      if (this.waker.wake(entry.serviceId)) this.metrics.wakes.inc({ service: key });
    } else if (!((entry.startingReplicas ?? 0) > 0 || this.waker.recentlyWoken(entry.serviceId))) {
      reject(503, 'NO_READY_REPLICAS', `service "${key}" has no ready replica; retry later`);
      return null;
    }
    // The first request held in a cold-start episode times the cold start.
    const token = {};
    const first = scaledToZero && !this.coldStarts.has(entry.serviceId);
    if (first) this.coldStarts.set(entry.serviceId, token);
    const heldAt = performance.now();
    const ac = new AbortController();
    const onClose = () => ac.abort();
    closable.once('close', onClose);
    const ready = await this.routes.waitForEndpoints(key, this.opts.holdTimeoutMs, ac.signal);
    closable.off('close', onClose);
    if (first && this.coldStarts.get(entry.serviceId) === token) this.coldStarts.delete(entry.serviceId);
    if (ac.signal.aborted) return null;
    if (!ready) {
      reject(503, 'SERVICE_STARTING', `service "${key}" is starting and had no ready replica within ${this.opts.holdTimeoutMs} ms; retry shortly`);
      return null;
    }
    if (first) this.metrics.coldStart.observe({ service: key }, (performance.now() - heldAt) / 1000);
    return ready;
  }

  private async forward(req: http.IncomingMessage, res: http.ServerResponse, key: string, entry: RouteEntry): Promise<void> {
    const method = req.method ?? 'GET';
    let retryable = IDEMPOTENT_METHODS.has(method);
    const te = req.headers['transfer-encoding'];
    const cl = req.headers['content-length'];
    const hasBody = te !== undefined || (cl !== undefined && cl !== '0');
    let body: Buffer | http.IncomingMessage | null = null;
    const headers = addForwardedHeaders(
      stripHopByHop(req.headers),
      { address: clientAddress(req.socket.remoteAddress), host: req.headers.host, proto: 'http' },
      this.opts.trustForwarded,
    );
    if (hasBody) {
      const len = Number(cl);
      if (retryable && te === undefined && Number.isFinite(len) && len <= this.opts.retryBodyLimitBytes) {
        body = await readAll(req);
        if (!body) return; // client went away mid-body
      } else {
        body = req;
        retryable = false;
      }
    }
    const path = req.url && req.url.startsWith('/') ? req.url : toPath(req.url);
    // No AbortSignal per request (it costs ~10% throughput): if the client leaves, the write into the
    // destroyed response fails and undici tears the upstream request down at that point.

    const tried = new Set<string>();
    for (let attempt = 1; ; attempt++) {
      const endpoints = this.routes.get(key)?.endpoints ?? entry.endpoints;
      const ep = this.balancer.pick(endpoints, tried);
      if (!ep) {
        sendError(res, 503, 'NO_READY_REPLICAS', `service "${key}" has no ready replica left to try; retry later`, this.opts.retryAfterS);
        return;
      }
      tried.add(ep.replicaId);
      let responded = false;
      // Another replica could still take this request if this one fails: then a small answer is held
      // until it is complete, so a replica that dies mid-body is retried instead of cutting the client off.
      const canRetry = retryable && attempt < this.opts.maxAttempts && endpoints.length > tried.size;
      const held: { statusCode: number; headers: HeaderMap; chunks: Buffer[] } = { statusCode: 0, headers: {}, chunks: [] };
      this.balancer.acquire(ep.replicaId);
      try {
        await this.pools.get(ep).stream(
          { path, method: method as 'GET', headers, body },
          ({ statusCode, headers: upstreamHeaders }) => {
            const len = canRetry ? Number(upstreamHeaders['content-length']) : NaN;
            if (len <= this.opts.retryBodyLimitBytes) {
              held.statusCode = statusCode;
              held.headers = stripHopByHop(upstreamHeaders as HeaderMap);
              return new Writable({
                write(chunk: Buffer, _enc, cb) {
                  held.chunks.push(chunk);
                  cb();
                },
              });
            }
            responded = true;
            res.writeHead(statusCode, stripHopByHop(upstreamHeaders as HeaderMap));
            return res;
          },
        );
        if (held.statusCode !== 0 && !res.destroyed) {
          res.writeHead(held.statusCode, held.headers);
          res.end(held.chunks.length === 1 ? held.chunks[0] : Buffer.concat(held.chunks));
        }
        return;
      } catch (e) {
        if (res.destroyed && !res.writableFinished && !responded) return; // the client left
        const code = errorCode(e);
        if (responded || res.headersSent) {
          res.destroy();
          return;
        }
        if (EJECT_CODES.has(code)) this.balancer.eject(ep.replicaId);
        if (retryable && RETRYABLE_CODES.has(code) && attempt < this.opts.maxAttempts && endpoints.length > tried.size) {
          this.metrics.retries.inc({ service: key });
          continue;
        }
        const timeout = code === 'UND_ERR_HEADERS_TIMEOUT';
        this.deps.log.warn({ service: key, replica: ep.replicaId, code, attempt }, 'upstream request failed');
        sendError(res, timeout ? 504 : 502, timeout ? 'UPSTREAM_TIMEOUT' : 'BAD_GATEWAY', `replica of "${key}" failed: ${code}`);
        return;
      } finally {
        this.balancer.release(ep.replicaId);
      }
    }
  }

  // ------------------------------------------------------------------------------------------ WebSocket

  private async handleUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    socket.on('error', () => socket.destroy());
    const host = parseServiceHost(req.headers.host, this.opts.baseDomain);
    const key = host ? routeKey(host.project, host.service) : '';
    const entry = host ? this.routes.get(key) : undefined;
    if (!entry) return rawError(socket, 404, 'SERVICE_NOT_FOUND', `no service is routed for host "${req.headers.host ?? ''}"`);
    const serviceId = entry.serviceId;
    this.tracker.begin(serviceId, this.now());
    socket.once('close', () => this.tracker.end(serviceId, this.now()));
    const ready =
      entry.endpoints.length > 0 ? entry : await this.hold(entry, key, socket, (status, code, msg) => rawError(socket, status, code, msg, this.opts.retryAfterS));
    if (!ready) return;
    const ep = this.balancer.pick(ready.endpoints);
    if (!ep) return rawError(socket, 503, 'NO_READY_REPLICAS', `service "${key}" has no ready replica`);
    const headers = addForwardedHeaders(
      stripHopByHop(req.headers, { upgrade: true }),
      { address: clientAddress(req.socket.remoteAddress), host: req.headers.host, proto: 'http' },
      this.opts.trustForwarded,
    );
    this.balancer.acquire(ep.replicaId);
    let released = false;
    const release = () => {
      if (!released) this.balancer.release(ep.replicaId);
      released = true;
    };
    socket.once('close', release);
    const upstream = http.request({ host: ep.address, port: ep.port, method: req.method, path: req.url, headers });
    upstream.on('upgrade', (ures, usocket, uhead) => {
      usocket.on('error', () => socket.destroy());
      socket.on('error', () => usocket.destroy());
      usocket.once('close', () => socket.destroy());
      socket.once('close', () => usocket.destroy());
      socket.write(statusLine(ures) + rawHeaderLines(ures.rawHeaders) + '\r\n');
      if (uhead.length) socket.write(uhead);
      if (head.length) usocket.write(head);
      usocket.pipe(socket);
      socket.pipe(usocket);
    });
    upstream.on('response', (ures) => {
      // The upstream declined the upgrade: relay its answer and close.
      socket.write(statusLine(ures) + rawHeaderLines(ures.rawHeaders, true) + 'connection: close\r\n\r\n');
      ures.pipe(socket);
    });
    upstream.on('error', (e) => {
      release();
      rawError(socket, 502, 'BAD_GATEWAY', `replica of "${key}" failed: ${errorCode(e)}`);
    });
    upstream.end();
  }

  // ------------------------------------------------------------------------------------------ upkeep

  private retainTimer: NodeJS.Timeout | null = null;
  private retainPoolsSoon() {
    if (this.retainTimer) return;
    this.retainTimer = setTimeout(() => {
      this.retainTimer = null;
      const live = new Set<string>();
      for (const e of this.routes.all()) for (const ep of e.endpoints) live.add(originOf(ep));
      this.pools.retain(live);
    }, 1000);
    this.retainTimer.unref();
  }

  private registerGaugeCollectors() {
    const gw = this;
    const inflight = this.metrics.inflight as unknown as { collect?: () => void };
    inflight.collect = function () {
      gw.metrics.inflight.reset();
      for (const e of gw.routes.all()) gw.metrics.inflight.set({ service: routeKey(e.project, e.service) }, gw.tracker.inflight(e.serviceId));
    };
    const replicas = this.metrics.replicaInflight as unknown as { collect?: () => void };
    replicas.collect = function () {
      gw.metrics.replicaInflight.reset();
      for (const e of gw.routes.all()) {
        for (const ep of e.endpoints) {
          gw.metrics.replicaInflight.set({ service: routeKey(e.project, e.service), replica: ep.replicaId }, gw.balancer.inflightOf(ep.replicaId));
        }
      }
    };
  }
}

// ---------------------------------------------------------------------------------------------- helpers

function sendError(res: http.ServerResponse, status: number, code: string, message: string, retryAfterS?: number) {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify({ error: { code, message } });
  const headers: Record<string, string | number> = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
  if (retryAfterS !== undefined && status === 503) headers['retry-after'] = retryAfterS;
  res.writeHead(status, headers).end(body);
}

function rawError(socket: Duplex, status: number, code: string, message: string, retryAfterS?: number) {
  if (!socket.writable) return;
  const body = JSON.stringify({ error: { code, message } });
  const extra = retryAfterS !== undefined && status === 503 ? `retry-after: ${retryAfterS}\r\n` : '';
  socket.end(
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extra}connection: close\r\n\r\n${body}`,
  );
}

const statusLine = (res: http.IncomingMessage) => `HTTP/1.1 ${res.statusCode} ${res.statusMessage ?? http.STATUS_CODES[res.statusCode ?? 500]}\r\n`;

function rawHeaderLines(raw: string[], dropHopByHop = false): string {
  let out = '';
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (dropHopByHop && /^(connection|keep-alive|transfer-encoding|upgrade)$/i.test(raw[i])) continue;
    out += `${raw[i]}: ${raw[i + 1]}\r\n`;
  }
  return out;
}

function toPath(url: string | undefined): string {
  if (!url) return '/';
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return '/';
  }
}

/** Reads a small body (Content-Length ≤ the retry limit, so bounded) completely for retries; null when the client aborted. */
function readAll(req: http.IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('aborted', () => resolve(null));
    req.once('error', () => resolve(null));
  });
}
