import http from 'node:http';
import type { Duplex } from 'node:stream';
import { RouteEndpoint, RouteEntry, routeKey } from '@berth/contracts';
import type { HealthCheck, Logger, Registry } from '@berth/observability';
import type Redis from 'ioredis';
import { ConcurrencyPublisher } from './metrics/concurrency-publisher';
import { ConcurrencyTracker } from './metrics/concurrency-tracker';
import { RequestStats, createGatewayMetrics } from './metrics/gateway-metrics';
import { IDEMPOTENT_METHODS, ForwardRequestHeaders, addForwardedHeaders, clientAddress, forwardRequestHeaders, forwardResponseHeaders, stripHopByHop } from './proxy/headers';
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

/**
 * Answers with a known length up to this size are collected and written with one `res.end(body)`
 * (headers and body in one write) instead of being streamed chunk by chunk.
 */
const SMALL_RESPONSE_BYTES = 16 * 1024;
const NONE: ReadonlySet<string> = new Set();
const ignore = () => undefined;

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
  private readonly stats: RequestStats;
  /** Host header → route key (null: not a service host); bounded, cleared when full. */
  private readonly hostKeys = new Map<string, string | null>();
  private readonly now: () => number;
  private readonly opts: GatewayOptions;

  constructor(private readonly deps: GatewayDeps) {
    this.opts = deps.options;
    this.now = deps.now ?? Date.now;
    this.metrics = createGatewayMetrics(deps.registry);
    this.stats = new RequestStats(this.metrics);
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
      keyPrefix: this.opts.keyPrefix,
      gatewayId: this.opts.gatewayId,
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

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.on('error', ignore);
    const started = performance.now();
    const fwd = forwardRequestHeaders(req.rawHeaders, { address: clientAddress(req.socket.remoteAddress), proto: 'http' }, this.opts.trustForwarded);
    const key = this.routeKeyOf(fwd.host);
    if (key === null) {
      return sendError(res, 404, 'HOST_NOT_ROUTED', `no service is routed for host "${fwd.host ?? ''}": expected <service>.<project>.${this.opts.baseDomain}`);
    }
    const entry = this.routes.get(key);
    if (!entry) {
      const host = parseServiceHost(fwd.host, this.opts.baseDomain);
      return sendError(res, 404, 'SERVICE_NOT_FOUND', `no service "${host?.service}" in project "${host?.project}"`);
    }
    const ex = new Exchange(this, req, res, key, entry.serviceId, started, fwd.headers);
    this.tracker.begin(ex.serviceId, this.now());
    res.once('close', ex.onClose);
    if (entry.endpoints.length > 0) this.forward(ex, entry, fwd);
    else void this.holdThenForward(ex, entry, fwd);
  }

  private async holdThenForward(ex: Exchange, entry: RouteEntry, fwd: ForwardRequestHeaders): Promise<void> {
    const res = ex.res;
    try {
      const ready = await this.hold(entry, ex.key, res, (status, code, msg) => sendError(res, status, code, msg, this.opts.retryAfterS));
      if (ready) this.forward(ex, ready, fwd);
    } catch (e) {
      this.failed(ex, e);
    }
  }

  /** Called by an Exchange when its response has closed (finished or cut off). */
  finishExchange(ex: Exchange): void {
    this.tracker.end(ex.serviceId, this.now());
    this.stats.record(ex.key, ex.res.statusCode, (performance.now() - ex.started) / 1000);
  }

  private failed(ex: Exchange, e: unknown): void {
    this.deps.log.error({ err: e, service: ex.key }, 'gateway error');
    if (!ex.res.headersSent) sendError(ex.res, 502, 'BAD_GATEWAY', 'the gateway could not forward the request');
    else ex.res.destroy();
  }

  private routeKeyOf(host: string | undefined): string | null {
    if (host === undefined) return null;
    let key = this.hostKeys.get(host);
    if (key === undefined) {
      const parsed = parseServiceHost(host, this.opts.baseDomain);
      key = parsed ? routeKey(parsed.project, parsed.service) : null;
      if (this.hostKeys.size >= 4096) this.hostKeys.clear();
      this.hostKeys.set(host, key);
    }
    return key;
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
      this.waker.wake(entry.serviceId, () => this.metrics.wakes.inc({ service: key }));
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

  private forward(ex: Exchange, entry: RouteEntry, fwd: ForwardRequestHeaders): void {
    const req = ex.req;
    ex.method = req.method ?? 'GET';
    ex.retryable = IDEMPOTENT_METHODS.has(ex.method);
    const te = fwd.transferEncoding;
    const cl = fwd.contentLength;
    ex.path = req.url && req.url.startsWith('/') ? req.url : toPath(req.url);
    ex.entry = entry;
    if (te !== undefined || (cl !== undefined && cl !== '0')) {
      const len = Number(cl);
      if (ex.retryable && te === undefined && Number.isFinite(len) && len <= this.opts.retryBodyLimitBytes) {
        readAll(req).then((body) => {
          if (!body) return; // client went away mid-body
          ex.body = body;
          this.attempt(ex);
        }, (e: unknown) => this.failed(ex, e));
        return;
      }
      ex.body = req;
      ex.retryable = false;
    }
    this.attempt(ex);
  }

  /**
   * One try on one replica. The response goes straight into the client response through a raw undici
   * handler (no stream/promise wrappers). No AbortSignal per request: when the client leaves, the
   * Exchange's close handler aborts the upstream request.
   */
  private attempt(ex: Exchange): void {
    const entry = ex.entry!;
    const endpoints = this.routes.get(ex.key)?.endpoints ?? entry.endpoints;
    const ep = this.balancer.pick(endpoints, ex.tried ?? NONE);
    if (!ep) {
      sendError(ex.res, 503, 'NO_READY_REPLICAS', `service "${ex.key}" has no ready replica left to try; retry later`, this.opts.retryAfterS);
      return;
    }
    (ex.tried ??= new Set()).add(ep.replicaId);
    ex.attempts++;
    // Another replica could still take this request if this one fails: then a small answer is held
    // until it is complete, so a replica that dies mid-body is retried instead of cutting the client off.
    const holdLimit = this.canRetry(ex, endpoints.length) ? Math.max(this.opts.retryBodyLimitBytes, SMALL_RESPONSE_BYTES) : SMALL_RESPONSE_BYTES;
    const handler = new UpstreamHandler(this, ex, ep, holdLimit, endpoints.length);
    ex.upstream = handler;
    this.balancer.acquire(ep.replicaId);
    try {
      this.pools.get(ep).dispatch({ path: ex.path, method: ex.method as 'GET', headers: ex.headers, body: ex.body }, handler);
    } catch (e) {
      handler.onError(e as Error);
    }
  }

  /** Whether another replica may still take this request after the current attempt fails. */
  private canRetry(ex: Exchange, endpointCount: number): boolean {
    return ex.retryable && ex.attempts < this.opts.maxAttempts && endpointCount > (ex.tried?.size ?? 0);
  }

  /** The upstream attempt ended; `err` is null when the response was delivered. */
  attemptDone(ex: Exchange, handler: UpstreamHandler, err: Error | null, endpointCount: number): void {
    this.balancer.release(handler.ep.replicaId);
    if (ex.upstream === handler) ex.upstream = null;
    if (!err) return;
    const res = ex.res;
    if (res.destroyed && !res.writableFinished && !handler.responded) return; // the client left
    if (handler.responded || res.headersSent) {
      res.destroy();
      return;
    }
    const code = errorCode(err);
    if (EJECT_CODES.has(code)) this.balancer.eject(handler.ep.replicaId);
    if (RETRYABLE_CODES.has(code) && this.canRetry(ex, endpointCount)) {
      this.metrics.retries.inc({ service: ex.key });
      this.attempt(ex);
      return;
    }
    const timeout = code === 'UND_ERR_HEADERS_TIMEOUT';
    this.deps.log.warn({ service: ex.key, replica: handler.ep.replicaId, code, attempt: ex.attempts }, 'upstream request failed');
    sendError(res, timeout ? 504 : 502, timeout ? 'UPSTREAM_TIMEOUT' : 'BAD_GATEWAY', `replica of "${ex.key}" failed: ${code}`);
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

// ---------------------------------------------------------------------------------------------- per request

/** One client request through the gateway, across its attempts. */
class Exchange {
  method = 'GET';
  path = '/';
  body: Buffer | http.IncomingMessage | null = null;
  retryable = false;
  attempts = 0;
  tried: Set<string> | null = null;
  entry: RouteEntry | null = null;
  /** The upstream attempt in progress, aborted when the client leaves. */
  upstream: UpstreamHandler | null = null;

  constructor(
    private readonly gw: Gateway,
    readonly req: http.IncomingMessage,
    readonly res: http.ServerResponse,
    readonly key: string,
    readonly serviceId: string,
    readonly started: number,
    readonly headers: string[],
  ) {}

  readonly onClose = (): void => {
    this.upstream?.abortFromClient();
    this.gw.finishExchange(this);
  };
}

/**
 * undici's raw dispatch handler for one attempt: response headers are filtered straight from the raw
 * list, a small answer with a known length is collected and sent with one write, anything else is
 * streamed into the client response with backpressure.
 */
class UpstreamHandler {
  responded = false;
  private done = false;
  private abort: ((err?: Error) => void) | null = null;
  private held: Buffer[] | null = null;
  private heldStatus = 0;
  private heldHeaders: string[] = [];

  constructor(
    private readonly gw: Gateway,
    private readonly ex: Exchange,
    readonly ep: RouteEndpoint,
    private readonly holdLimit: number,
    private readonly endpointCount: number,
  ) {}

  abortFromClient(): void {
    if (!this.done && this.abort) this.abort(new ClientGoneError());
  }

  onConnect(abort: (err?: Error) => void): void {
    this.abort = abort;
    if (this.ex.res.destroyed) abort(new ClientGoneError());
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: Node answers 100-continue itself
    const { headers, contentLength } = forwardResponseHeaders(rawHeaders);
    if (contentLength <= this.holdLimit) {
      this.held = [];
      this.heldStatus = statusCode;
      this.heldHeaders = headers;
      return true;
    }
    const res = this.ex.res;
    if (res.destroyed) return true;
    this.responded = true;
    res.writeHead(statusCode, headers);
    res.on('drain', resume);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.held !== null) {
      this.held.push(chunk);
      return true;
    }
    const res = this.ex.res;
    return res.destroyed ? true : res.write(chunk);
  }

  onComplete(): void {
    this.done = true;
    const res = this.ex.res;
    if (!res.destroyed) {
      if (this.held !== null) {
        const held = this.held;
        res.writeHead(this.heldStatus, this.heldHeaders);
        res.end(held.length === 1 ? held[0] : Buffer.concat(held));
      } else {
        res.end();
      }
    }
    this.gw.attemptDone(this.ex, this, null, this.endpointCount);
  }

  onError(err: Error): void {
    if (this.done) return;
    this.done = true;
    this.gw.attemptDone(this.ex, this, err, this.endpointCount);
  }
}

class ClientGoneError extends Error {
  readonly code = 'CLIENT_GONE';
  constructor() {
    super('the client closed the connection');
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
