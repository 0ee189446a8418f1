import type net from 'node:net';
import { RouteEndpoint, RouteEntry, routeKey } from '@berth/contracts';
import type { HealthCheck, Logger, Registry } from '@berth/observability';
import type Redis from 'ioredis';
import { ChunkedScanner, HeadEntry, RequestHead, ResponseHead } from './http1/parse';
import { BodyReader, ClientConnection, Http1Server, PrebuiltHead, ResponseFraming } from './http1/server';
import { ResponseHandler, UpstreamConnection, UpstreamError, UpstreamPools, originOf } from './http1/upstream';
import { ConcurrencyPublisher } from './metrics/concurrency-publisher';
import { MetricsHistory } from './metrics/metrics-history';
import { ConcurrencyTracker } from './metrics/concurrency-tracker';
import { RequestStats, createGatewayMetrics } from './metrics/gateway-metrics';
import { IDEMPOTENT_METHODS, clientAddress, responseFieldLines, upstreamRequestHead } from './proxy/headers';
import { LeastOutstandingBalancer } from './proxy/least-outstanding.balancer';
import { parseServiceHost } from './routing/host';
import { RouteTable, routeTableKeys } from './routing/route-table';
import { UnknownHosts } from './routing/unknown-hosts';
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
  /** How often the per-minute traffic history is added to Redis (default 10 s). */
  metricsFlushMs?: number;
  upstreamHeadersTimeoutMs: number;
  upstreamConnectTimeoutMs: number;
  trustForwarded: boolean;
  /** A client that sent part of a request head gets 408 after this long (default 60 s). */
  clientHeadersTimeoutMs?: number;
  /** Idle keep-alive client connections are closed after this long (default 5 s). */
  clientKeepAliveTimeoutMs?: number;
  /**
   * A request for a host with no route entry waits this long for one before 404 (default 0: 404 at
   * once; the process default is BERTH_GATEWAY_UNKNOWN_HOST_HOLD_MS). See UnknownHosts.
   */
  unknownHostHoldMs?: number;
  /** At most this many requests held for unknown hosts at once (default 256); more get 404 at once. */
  unknownHostMaxHeld?: number;
  /** A key that ended a hold with no entry answers 404 after one Redis read, without holding, for this long (default 1 s). */
  unknownHostNegativeMs?: number;
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

/** Failures that happen before the replica answered anything: safe to retry idempotent requests. */
const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ETIMEDOUT',
  'UPSTREAM_CONNECT_TIMEOUT',
  // The replica closed before the whole (held, see UpstreamAttempt) answer arrived: it died mid-answer.
  'UPSTREAM_CLOSED',
]);
/** Failures meaning "nothing listens there (now)": skip that replica for a moment. */
const EJECT_CODES = new Set(['ECONNREFUSED', 'EHOSTUNREACH', 'ENETUNREACH', 'UPSTREAM_CONNECT_TIMEOUT']);

/**
 * The HTTP ingress: Host → service → a READY replica, chosen by least outstanding requests.
 * Request lifecycle: route lookup (404 when unknown) → concurrency accounting starts → if the service has
 * no READY endpoint: hold (scale from zero / replicas starting, with a wake-up) or 503 → forward with
 * retries of idempotent requests on another replica → accounting ends when the exchange ends.
 *
 * HTTP/1.1 is spoken on plain sockets (./http1): heads are parsed strictly and rewritten, bodies pass
 * through with the framing the gateway checked, so a request costs a read and a write each way.
 */
export class Gateway {
  readonly server: Http1Server;
  readonly routes: RouteTable;
  readonly metrics: ReturnType<typeof createGatewayMetrics>;
  readonly tracker: ConcurrencyTracker;
  readonly balancer: LeastOutstandingBalancer;
  readonly pools: UpstreamPools;
  /** Open WebSocket (upgraded) connections, cut on close. */
  private readonly tunnels = new Set<net.Socket>();
  private readonly waker: Waker;
  private readonly publisher: ConcurrencyPublisher;
  private readonly coldStarts = new Map<string, object>();
  private readonly stats: RequestStats;
  private readonly history: MetricsHistory;
  /** Host header → route key (null: not a service host); bounded, cleared when full. */
  private readonly hostKeys = new Map<string, string | null>();
  private readonly unknownHosts: UnknownHosts;
  private readonly now: () => number;
  readonly opts: GatewayOptions;

  constructor(private readonly deps: GatewayDeps) {
    this.opts = deps.options;
    this.now = deps.now ?? Date.now;
    this.metrics = createGatewayMetrics(deps.registry);
    this.stats = new RequestStats(this.metrics);
    this.history = new MetricsHistory({ redis: deps.redis, keyPrefix: this.opts.keyPrefix, flushMs: this.opts.metricsFlushMs ?? 10_000, now: this.now, log: deps.log });
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
    this.unknownHosts = new UnknownHosts(
      this.routes,
      {
        holdMs: this.opts.unknownHostHoldMs ?? 0,
        maxHeld: this.opts.unknownHostMaxHeld ?? 256,
        negativeMs: this.opts.unknownHostNegativeMs ?? 1000,
      },
      this.now,
    );
    this.routes.subscribe((key, entry) => {
      if (entry) this.unknownHosts.forget(key);
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
    this.server = new Http1Server(
      { onRequest: (conn, head, entry) => this.handle(conn, head, entry) },
      { headersTimeoutMs: this.opts.clientHeadersTimeoutMs ?? 60_000, keepAliveTimeoutMs: this.opts.clientKeepAliveTimeoutMs ?? 5_000 },
    );
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
    this.history.start();
    return this.server.listen(port, host);
  }

  /**
   * Stops accepting connections, lets in-flight requests finish for up to `drainMs`, then cuts what is
   * left (long streams, WebSockets) and releases pools and queues.
   */
  async close(drainMs = 0): Promise<void> {
    this.publisher.stop();
    await this.routes.stop();
    await this.server.close(drainMs, this.tunnels);
    await this.history.stop();
    this.pools.close();
    await this.waker.close();
  }

  // ------------------------------------------------------------------------------------------ HTTP

  private handle(conn: ClientConnection, head: RequestHead, headEntry: HeadEntry<RequestHead>): void {
    const started = performance.now();
    // What depends only on the head and the connection (routing key, the head to forward) is kept
    // with the head and reused while the client repeats it.
    let memo = headEntry.memo as RequestMemo | null;
    if (memo === null) {
      if (head.method === 'CONNECT') return conn.sendError(405, 'METHOD_NOT_ALLOWED', 'CONNECT is not supported: the gateway is not a forward proxy');
      const key = this.routeKeyOf(head.host);
      if (key === null) {
        return conn.sendError(404, 'HOST_NOT_ROUTED', `no service is routed for host "${head.host ?? ''}": expected <service>.<project>.${this.opts.baseDomain}`);
      }
      const path = head.target.startsWith('/') || head.target === '*' ? head.target : toPath(head.target);
      const forwarded = upstreamRequestHead(head, path, { address: clientAddress(conn.remoteAddress), proto: 'http' }, this.opts.trustForwarded);
      memo = headEntry.memo = { key, upstreamHead: Buffer.from(forwarded, 'latin1') };
    }
    const key = memo.key;
    const entry = this.routes.get(key);
    if (!entry) return void this.holdUnknown(conn, head, key, started, memo.upstreamHead);
    this.dispatch(conn, head, key, entry, started, memo.upstreamHead);
  }

  /**
   * No route entry for the host (yet): wait a bounded time for one (UnknownHosts), then go on as for a
   * known service, or answer 404. A service the api has just created is routed, never 404.
   */
  private async holdUnknown(conn: ClientConnection, head: RequestHead, key: string, started: number, upstreamHead: Buffer): Promise<void> {
    const abort = new AbortController();
    const onGone = () => abort.abort();
    conn.onGone = onGone;
    let result;
    try {
      result = await this.unknownHosts.resolve(key, abort.signal);
    } catch (e) {
      this.deps.log.warn({ err: e, service: key }, 'unknown host look-up failed');
      result = { entry: null, outcome: 'not_found' as const };
    }
    if (conn.onGone === onGone) conn.onGone = null;
    this.metrics.unknownHosts.inc({ outcome: result.outcome });
    if (abort.signal.aborted || conn.closed) return;
    if (result.entry) return this.dispatch(conn, head, key, result.entry, started, upstreamHead);
    const host = parseServiceHost(head.host, this.opts.baseDomain);
    conn.sendError(404, 'SERVICE_NOT_FOUND', `no service "${host?.service}" in project "${host?.project}"`);
  }

  private dispatch(conn: ClientConnection, head: RequestHead, key: string, entry: RouteEntry, started: number, upstreamHead: Buffer): void {
    const ex = new Exchange(this, conn, head, key, entry, started, upstreamHead);
    this.tracker.begin(ex.serviceId, this.now());
    conn.onGone = ex.onGone;
    if (entry.endpoints.length > 0) this.forward(ex, entry);
    else void this.holdThenForward(ex, entry);
  }

  private async holdThenForward(ex: Exchange, entry: RouteEntry): Promise<void> {
    const conn = ex.conn;
    try {
      const ready = await this.hold(entry, ex.key, ex.abortSignal(), (status, code, msg) => {
        conn.sendError(status, code, msg, status === 503 ? `retry-after: ${this.opts.retryAfterS}\r\n` : '');
        this.finishExchange(ex);
      });
      if (ready && !ex.finished) this.forward(ex, ready);
    } catch (e) {
      this.failed(ex, e);
    }
  }

  /** Ends an exchange's accounting once (answer complete, or the client left). */
  finishExchange(ex: Exchange): void {
    if (ex.finished) return;
    ex.finished = true;
    if (ex.conn.onGone === ex.onGone) ex.conn.onGone = null;
    this.tracker.end(ex.serviceId, this.now());
    const seconds = (performance.now() - ex.started) / 1000;
    this.stats.record(ex.key, ex.conn.status || 499, seconds);
    this.history.request(ex.serviceId, ex.conn.status || 499, seconds);
  }

  private failed(ex: Exchange, e: unknown): void {
    this.deps.log.error({ err: e, service: ex.key }, 'gateway error');
    if (!ex.conn.headersSent) ex.conn.sendError(502, 'BAD_GATEWAY', 'the gateway could not forward the request');
    else ex.conn.destroy();
    this.finishExchange(ex);
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
   * read (past a small buffer, TCP backpressure holds the client).
   */
  private async hold(entry: RouteEntry, key: string, signal: AbortSignal, reject: (status: number, code: string, message: string) => void): Promise<RouteEntry | null> {
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
    const ready = await this.routes.waitForEndpoints(key, this.opts.holdTimeoutMs, signal);
    if (first && this.coldStarts.get(entry.serviceId) === token) this.coldStarts.delete(entry.serviceId);
    if (signal.aborted) return null;
    if (!ready) {
      reject(503, 'SERVICE_STARTING', `service "${key}" is starting and had no ready replica within ${this.opts.holdTimeoutMs} ms; retry shortly`);
      return null;
    }
    if (first) {
      const seconds = (performance.now() - heldAt) / 1000;
      this.metrics.coldStart.observe({ service: key }, seconds);
      this.history.coldStart(entry.serviceId, seconds);
    }
    return ready;
  }

  private forward(ex: Exchange, entry: RouteEntry): void {
    const head = ex.head;
    ex.entry = entry;
    ex.retryable = IDEMPOTENT_METHODS.has(head.method);
    if (head.upgrade !== undefined) {
      ex.retryable = false;
      ex.bodyState = BodyState.SENT;
    } else if (head.body === 'none') {
      ex.bodyState = BodyState.SENT;
    } else if (ex.retryable && head.body === 'length' && head.contentLength <= this.opts.retryBodyLimitBytes) {
      // A small body of an idempotent request is read first, so that another replica can be tried.
      ex.bodyState = BodyState.BUFFERING;
      ex.conn.sendContinue();
      ex.conn.readBody(ex.collector());
      return;
    } else {
      ex.retryable = false;
      ex.bodyState = BodyState.STREAM;
    }
    this.attempt(ex);
  }

  /** One try on one replica (least outstanding requests among those not tried yet). */
  attempt(ex: Exchange): void {
    const entry = ex.entry!;
    const endpoints = this.routes.get(ex.key)?.endpoints ?? entry.endpoints;
    const ep = this.balancer.pick(endpoints, ex.tried ?? NONE);
    if (!ep) {
      ex.conn.sendError(503, 'NO_READY_REPLICAS', `service "${ex.key}" has no ready replica left to try; retry later`, `retry-after: ${this.opts.retryAfterS}\r\n`);
      return this.finishExchange(ex);
    }
    (ex.tried ??= new Set()).add(ep.replicaId);
    ex.attempts++;
    ex.endpointCount = endpoints.length;
    this.balancer.acquire(ep.replicaId);
    const attempt = new UpstreamAttempt(this, ex, ep);
    ex.current = attempt;
    this.pools.get(ep).acquire(ep, attempt.onConnection, ex.head.upgrade !== undefined);
  }

  /** Whether another replica may still take this request after the current attempt fails. */
  canRetry(ex: Exchange): boolean {
    return ex.retryable && ex.attempts < this.opts.maxAttempts && ex.endpointCount > (ex.tried?.size ?? 0);
  }

  /** An attempt ended; `err` is null when the answer was delivered. */
  attemptDone(ex: Exchange, attempt: UpstreamAttempt, err: UpstreamError | null): void {
    this.balancer.release(attempt.ep.replicaId);
    if (ex.current === attempt) ex.current = null;
    if (!err) return this.finishExchange(ex);
    if (ex.finished || ex.conn.closed) return; // the client left
    const conn = ex.conn;
    if (attempt.responded || conn.headersSent) {
      conn.destroy();
      return this.finishExchange(ex);
    }
    const code = err.code;
    // A keep-alive connection the replica closed just as it was reused is not the replica's failure:
    // try the same replica once more on a new connection.
    if (attempt.staleConnection && ex.retryable && !ex.staleRetried && RETRYABLE_CODES.has(code)) {
      ex.staleRetried = true;
      ex.tried?.delete(attempt.ep.replicaId);
      ex.attempts--;
      return this.attempt(ex);
    }
    if (EJECT_CODES.has(code)) this.balancer.eject(attempt.ep.replicaId);
    if (RETRYABLE_CODES.has(code) && this.canRetry(ex)) {
      this.metrics.retries.inc({ service: ex.key });
      return this.attempt(ex);
    }
    const timeout = code === 'UPSTREAM_HEADERS_TIMEOUT';
    this.deps.log.warn({ service: ex.key, replica: attempt.ep.replicaId, code, attempt: ex.attempts, err: err.message }, 'upstream request failed');
    conn.sendError(timeout ? 504 : 502, timeout ? 'UPSTREAM_TIMEOUT' : 'BAD_GATEWAY', `replica of "${ex.key}" failed: ${code}`);
    this.finishExchange(ex);
  }

  /** The replica accepted a WebSocket (101): splice the two sockets together. */
  tunnel(ex: Exchange, attempt: UpstreamAttempt, head: ResponseHead, upstream: net.Socket, upstreamRest: Buffer): void {
    const { socket: client, rest } = ex.conn.takeOver();
    ex.conn.status = 101;
    const tunnels = this.tunnels;
    tunnels.add(client);
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      tunnels.delete(client);
      client.destroy();
      upstream.destroy();
      this.balancer.release(attempt.ep.replicaId);
      if (ex.current === attempt) ex.current = null;
      this.finishExchange(ex);
    };
    upstream.on('error', close);
    client.on('error', close);
    upstream.once('close', close);
    client.once('close', close);
    client.write(`HTTP/1.1 101 ${head.reason || 'Switching Protocols'}\r\n${responseFieldLines(head, true)}\r\n`, 'latin1');
    if (upstreamRest.length) client.write(upstreamRest);
    if (rest) upstream.write(rest);
    upstream.pipe(client);
    client.pipe(upstream);
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
    const unknown = this.metrics.unknownHostsHeld as unknown as { collect?: () => void };
    unknown.collect = function () {
      gw.metrics.unknownHostsHeld.set(gw.unknownHosts.held);
    };
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

const NONE: ReadonlySet<string> = new Set();

/** Kept with a request head (see RepeatedHead): its routing key and the head the replica gets. */
interface RequestMemo {
  key: string;
  upstreamHead: Buffer;
}

/** Kept with a response head: the fields relayed to the client, and its head prebuilt. */
interface ResponseMemo extends PrebuiltHead {
  lines: string;
}

const responseMemo = (entry: HeadEntry<ResponseHead>): ResponseMemo =>
  (entry.memo as ResponseMemo | null) ?? (entry.memo = { lines: responseFieldLines(entry.head), keepAlive: null } satisfies ResponseMemo);

// ---------------------------------------------------------------------------------------------- per request

const enum BodyState {
  /** Nothing (more) to send: no body, or all of it is sent or buffered. */
  SENT,
  /** A small body being read into memory before the first attempt. */
  BUFFERING,
  /** A body streamed from the client to the one replica that gets it. */
  STREAM,
}

/** One client request through the gateway, across its attempts. */
class Exchange {
  retryable = false;
  attempts = 0;
  endpointCount = 0;
  tried: Set<string> | null = null;
  entry: RouteEntry | null;
  bodyState = BodyState.SENT;
  /** The buffered body of a retryable request. */
  body: Buffer | null = null;
  current: UpstreamAttempt | null = null;
  finished = false;
  staleRetried = false;
  readonly serviceId: string;
  private abort: AbortController | null = null;

  constructor(
    private readonly gw: Gateway,
    readonly conn: ClientConnection,
    readonly head: RequestHead,
    readonly key: string,
    entry: RouteEntry,
    readonly started: number,
    readonly upstreamHead: Buffer,
  ) {
    this.entry = entry;
    this.serviceId = entry.serviceId;
  }

  /** Aborted when the client leaves (a held request stops waiting). */
  abortSignal(): AbortSignal {
    return (this.abort ??= new AbortController()).signal;
  }

  readonly onGone = (): void => {
    this.abort?.abort();
    this.current?.clientGone();
    this.gw.finishExchange(this);
  };

  /** Reads the whole (small, bounded by the retry limit) body, then makes the first attempt. */
  collector(): BodyReader {
    const chunks: Buffer[] = [];
    return {
      onData: (buf, start, end) => {
        chunks.push(buf.subarray(start, end));
        return true;
      },
      onEnd: () => {
        this.body = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
        this.bodyState = BodyState.SENT;
        if (!this.finished) this.gw.attempt(this);
      },
      onError: () => undefined, // the client left: onGone does the accounting
    };
  }
}

/**
 * One try of an exchange on one replica: sends the head (and a buffered body, or streams the client's
 * body), then relays the answer. While another replica could still take the request, an answer with a
 * known length within the retry limit is held until complete, so a replica that dies mid-answer is
 * retried instead of cutting the client off.
 */
class UpstreamAttempt implements ResponseHandler {
  responded = false;
  staleConnection = false;
  private upstream: UpstreamConnection | null = null;
  private done = false;
  private bodySent: boolean;
  private held: Buffer[] | null = null;
  private heldHead: HeadEntry<ResponseHead> | null = null;
  private decoder: ChunkedScanner | null = null;
  private waitingDrain = false;

  constructor(
    private readonly gw: Gateway,
    private readonly ex: Exchange,
    readonly ep: RouteEndpoint,
  ) {
    this.bodySent = ex.bodyState !== BodyState.STREAM;
  }

  readonly onConnection = (err: UpstreamError | null, conn: UpstreamConnection): void => {
    if (this.done) {
      // The client left while connecting: keep the fresh connection for the next request.
      if (!err) conn.release(performance.now());
      return;
    }
    if (err) return this.fail(err);
    this.upstream = conn;
    this.staleConnection = conn.reused;
    const ex = this.ex;
    conn.send(this, ex.head.method, ex.upstreamHead, ex.body, performance.now());
    if (ex.bodyState === BodyState.STREAM) {
      ex.conn.sendContinue();
      ex.conn.readBody(this.streamBody());
    }
  };

  clientGone(): void {
    this.abandon();
  }

  /** Streams the client's body to the replica, pausing the client while the replica's socket is full. */
  private streamBody(): BodyReader {
    return {
      onData: (buf, start, end) => {
        const up = this.upstream;
        if (this.done || up === null) return true;
        if (up.write(start === 0 && end === buf.length ? buf : buf.subarray(start, end))) return true;
        up.socket.once('drain', () => this.ex.conn.resumeBody());
        return false;
      },
      onEnd: () => {
        this.bodySent = true;
      },
      // The client went away mid-body, or sent a malformed one (already answered with 400): drop this try.
      onError: () => this.abandon(),
    };
  }

  /** Ends this try without an answer of its own (the client left, or was already answered). */
  private abandon(): void {
    if (this.done) return;
    this.done = true;
    this.upstream?.destroy();
    this.gw.attemptDone(this.ex, this, null);
  }

  // --- response ------------------------------------------------------------------------------

  onInformational(head: ResponseHead): void {
    this.ex.conn.writeInformational(head.status, head.reason, responseFieldLines(head));
  }

  onHead(head: ResponseHead, entry: HeadEntry<ResponseHead>): void {
    this.staleConnection = false;
    if (this.gw.canRetry(this.ex) && (head.body === 'none' || (head.body === 'length' && head.contentLength <= this.gw.opts.retryBodyLimitBytes))) {
      this.held = [];
      this.heldHead = entry;
      return;
    }
    this.writeHead(entry);
  }

  private writeHead(entry: HeadEntry<ResponseHead>): void {
    const head = entry.head;
    const memo = responseMemo(entry);
    this.responded = true;
    const framing = this.framing(head);
    this.ex.conn.writeHead(head.status, head.reason, memo.lines, framing, framing === head.body ? memo : undefined);
  }

  private framing(head: ResponseHead): ResponseFraming {
    if (head.body !== 'chunked') return head.body;
    if (this.ex.head.minor === 1) return 'chunked';
    this.decoder = new ChunkedScanner(true); // an HTTP/1.0 client: plain data, then close
    return 'close';
  }

  onBody(buf: Buffer, start: number, end: number): boolean {
    if (this.held !== null) {
      this.held.push(buf.subarray(start, end));
      return true;
    }
    const conn = this.ex.conn;
    let ok = true;
    if (this.decoder !== null) {
      this.decoder.scan(buf, start, (b, s, e) => {
        if (!conn.write(b, s, e)) ok = false;
      });
    } else ok = conn.write(buf, start, end);
    if (!ok && !this.waitingDrain) {
      this.waitingDrain = true;
      conn.onDrain(() => {
        this.waitingDrain = false;
        this.upstream?.resume();
      });
    }
    return ok;
  }

  onEnd(reusable: boolean): void {
    if (this.done) return;
    this.done = true;
    const up = this.upstream!;
    if (reusable && this.bodySent) up.release(performance.now());
    else up.destroy();
    const conn = this.ex.conn;
    if (this.held !== null) {
      this.writeHead(this.heldHead!);
      const held = this.held;
      if (held.length === 1) conn.write(held[0]);
      else if (held.length > 1) conn.write(Buffer.concat(held));
    }
    conn.end();
    this.gw.attemptDone(this.ex, this, null);
  }

  onUpgrade(head: ResponseHead, rest: Buffer): void {
    if (this.done) return;
    const up = this.upstream!;
    if (this.ex.head.upgrade === undefined) {
      up.socket.destroy();
      return this.fail(new UpstreamError('UPSTREAM_BAD_RESPONSE', '101 Switching Protocols without an upgrade request'));
    }
    this.done = true;
    this.responded = true;
    this.gw.tunnel(this.ex, this, head, up.socket, rest);
  }

  onError(err: UpstreamError): void {
    this.fail(err);
  }

  private fail(err: UpstreamError): void {
    if (this.done) return;
    this.done = true;
    this.upstream?.destroy();
    this.gw.attemptDone(this.ex, this, err);
  }
}

// ---------------------------------------------------------------------------------------------- helpers

function toPath(url: string): string {
  try {
    const u = new URL(url);
    return u.pathname + u.search;
  } catch {
    return '/';
  }
}
