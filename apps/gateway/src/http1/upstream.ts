import net from 'node:net';
import type { RouteEndpoint } from '@berth/contracts';
import { ByteAccumulator, ChunkedScanner, HeadEntry, HeadError, MAX_HEAD_BYTES, RepeatedHead, ResponseHead, parseResponseHead } from './parse';

export const originOf = (ep: RouteEndpoint) => `${ep.address.includes(':') ? `[${ep.address}]` : ep.address}:${ep.port}`;

const CRLF2 = Buffer.from('\r\n\r\n');
/** Where pooled connections' reads land before being copied out at their size (see UpstreamConnection). */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

/** A failure of one upstream exchange; `code` is a socket errno (ECONNREFUSED, ...) or one of ours. */
export class UpstreamError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** What an upstream connection tells the request it carries. */
export interface ResponseHandler {
  /** A 1xx other than 101. */
  onInformational(head: ResponseHead): void;
  /** `entry.memo` is the handler's own, kept while the replica repeats the same head. */
  onHead(head: ResponseHead, entry: HeadEntry<ResponseHead>): void;
  /** Body bytes as framed by the replica (chunked framing included); false asks to pause the replica. */
  onBody(buf: Buffer, start: number, end: number): boolean;
  /** The response is complete; `reusable` when the connection may carry another request. */
  onEnd(reusable: boolean): void;
  /** 101 Switching Protocols: the connection now belongs to the handler, `rest` is what followed the head. */
  onUpgrade(head: ResponseHead, rest: Buffer): void;
  onError(err: UpstreamError): void;
}

const enum Phase {
  CONNECTING,
  IDLE,
  HEAD,
  BODY,
  DONE,
}

/**
 * One keep-alive connection to a replica carrying one request at a time. Parses the response head,
 * finds the end of the body (Content-Length, chunked or close) and hands body bytes on unchanged.
 */
export class UpstreamConnection {
  readonly socket: net.Socket;
  /** Whether this connection already carried a request (a stale keep-alive connection fails differently). */
  reused = false;
  /** When the current request was sent (performance.now()), for the headers timeout. */
  sentAt = 0;
  idleSince = 0;
  private phase = Phase.CONNECTING;
  private handler: ResponseHandler | null = null;
  private method = 'GET';
  private buf: Buffer | null = null;
  private remaining = 0;
  private scanner: ChunkedScanner | null = null;
  private kind: ResponseHead['body'] = 'none';
  private keepAlive = true;
  private paused = false;
  private connectTimer: NodeJS.Timeout | null = null;
  private readonly repeated = new RepeatedHead<ResponseHead>();
  private readonly input = new ByteAccumulator();
  /** Bytes of `buf` already searched for the end of the head. */
  private headScanned = 0;

  constructor(
    readonly origin: string,
    ep: RouteEndpoint,
    connectTimeoutMs: number,
    private readonly pool: UpstreamPool,
    onConnect: (err: UpstreamError | null, conn: UpstreamConnection) => void,
    /** For an upgrade (WebSocket): a plain socket that can be piped once the replica switches protocols. */
    forUpgrade = false,
  ) {
    // Pooled connections read into one shared buffer and copy each read out at its size (a pooled
    // allocation for a small answer) instead of a fresh 64 KiB buffer pushed through a Readable.
    const socket = forUpgrade
      ? net.connect({ host: ep.address, port: ep.port })
      : net.connect({ host: ep.address, port: ep.port, onread: { buffer: READ_BUFFER, callback: (n, buf) => this.onRead(n, buf) } });
    this.socket = socket;
    socket.setNoDelay(true);
    this.connectTimer = setTimeout(() => {
      this.connectTimer = null;
      socket.destroy();
      onConnect(new UpstreamError('UPSTREAM_CONNECT_TIMEOUT', `no connection to ${origin} within ${connectTimeoutMs} ms`), this);
    }, connectTimeoutMs);
    const onConnectError = (e: NodeJS.ErrnoException) => {
      if (this.connectTimer === null) return;
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
      onConnect(new UpstreamError(e.code ?? 'ECONNREFUSED', `cannot connect to ${origin}: ${e.message}`), this);
    };
    socket.once('error', onConnectError);
    socket.once('connect', () => {
      if (this.connectTimer === null) return;
      clearTimeout(this.connectTimer);
      this.connectTimer = null;
      socket.off('error', onConnectError);
      socket.on('error', this.onSocketError);
      socket.on('data', this.onData);
      socket.on('end', this.onEnd);
      socket.on('close', this.onClose);
      this.phase = Phase.IDLE;
      onConnect(null, this);
    });
  }

  get busy(): boolean {
    return this.handler !== null;
  }

  /** Whether the response head of the current exchange has arrived. */
  hasHead(): boolean {
    return this.phase !== Phase.HEAD;
  }

  /** Starts an exchange: `head` (and a buffered body) go out in one write. */
  send(handler: ResponseHandler, method: string, head: Buffer, body: Buffer | null, now: number): void {
    this.handler = handler;
    this.method = method;
    this.phase = Phase.HEAD;
    this.sentAt = now;
    this.socket.write(body !== null && body.length > 0 ? Buffer.concat([head, body], head.length + body.length) : head);
  }

  /** Streams request body bytes; false when the socket wants a drain first. */
  write(buf: Buffer): boolean {
    return this.socket.write(buf);
  }

  pause(): void {
    if (!this.paused) {
      this.paused = true;
      this.socket.pause();
    }
  }

  resume(): void {
    if (this.paused) {
      this.paused = false;
      this.socket.resume();
    }
  }

  /** Drops the connection (an aborted exchange); the handler hears nothing more. */
  destroy(): void {
    this.handler = null;
    this.phase = Phase.DONE;
    this.socket.destroy();
    this.pool.forget(this);
  }

  /** The replica did not answer with headers in time. */
  timeOut(code: string, message: string): void {
    this.fail(new UpstreamError(code, message));
  }

  /** Hands the socket over (after 101); this object no longer reads it. */
  detach(): net.Socket {
    this.socket.off('data', this.onData);
    this.socket.off('end', this.onEnd);
    this.socket.off('close', this.onClose);
    this.socket.off('error', this.onSocketError);
    this.handler = null;
    this.phase = Phase.DONE;
    this.pool.forget(this);
    return this.socket;
  }

  private fail(err: UpstreamError): void {
    const h = this.handler;
    this.destroy();
    h?.onError(err);
  }

  private readonly onSocketError = (e: NodeJS.ErrnoException): void => {
    this.fail(new UpstreamError(e.code ?? 'ECONNRESET', `connection to ${this.origin} failed: ${e.message}`));
  };

  private readonly onEnd = (): void => {
    if (this.phase === Phase.BODY && this.kind === 'close' && this.handler) {
      this.keepAlive = false;
      this.complete();
      return;
    }
    this.fail(new UpstreamError('UPSTREAM_CLOSED', `${this.origin} closed the connection before the response was complete`));
  };

  private readonly onClose = (): void => {
    if (this.phase !== Phase.DONE) this.fail(new UpstreamError('UPSTREAM_CLOSED', `${this.origin} closed the connection`));
  };

  private onRead(n: number, buf: Uint8Array): boolean {
    this.onData(Buffer.from(buf.subarray(0, n)));
    return true;
  }

  private readonly onData = (d: Buffer): void => {
    if (this.handler === null) {
      // Bytes nobody asked for (on an idle connection): the connection is out of step; drop it.
      this.destroy();
      return;
    }
    if (this.phase === Phase.HEAD) this.readHead(d);
    else this.readBody(d, 0);
  };

  private readHead(d: Buffer): void {
    const data = this.buf === null ? d : this.input.append(this.buf, d);
    const at = data.indexOf(CRLF2, Math.max(0, this.headScanned - 3));
    if (at < 0) {
      if (data.length > MAX_HEAD_BYTES) return this.fail(new UpstreamError('UPSTREAM_BAD_RESPONSE', `response head from ${this.origin} exceeds ${MAX_HEAD_BYTES} bytes`));
      this.buf = data;
      this.headScanned = data.length;
      return;
    }
    this.buf = null;
    this.headScanned = 0;
    this.input.release();
    let entry = this.repeated.get(data, 0, at, this.method);
    if (entry === null) {
      try {
        entry = this.repeated.set(data, 0, at, this.method, parseResponseHead(data.toString('latin1', 0, at), this.method));
      } catch (e) {
        return this.fail(new UpstreamError('UPSTREAM_BAD_RESPONSE', e instanceof HeadError ? e.message : String(e)));
      }
    }
    const head = entry.head;
    const rest = at + 4;
    const h = this.handler!;
    if (head.status === 101) {
      const tail = data.subarray(rest);
      this.detach();
      h.onUpgrade(head, tail);
      return;
    }
    if (head.status < 200) {
      h.onInformational(head);
      if (this.handler === h && rest < data.length) this.readHead(data.subarray(rest));
      return;
    }
    this.phase = Phase.BODY;
    this.kind = head.body;
    this.keepAlive = head.keepAlive;
    this.remaining = head.contentLength;
    this.scanner = head.body === 'chunked' ? new ChunkedScanner() : null;
    h.onHead(head, entry);
    if (this.handler !== h) return; // aborted by the handler
    if (head.body === 'none' || (head.body === 'length' && head.contentLength === 0)) {
      if (rest < data.length) this.keepAlive = false; // bytes beyond the response: out of step
      this.complete();
      return;
    }
    if (rest < data.length) this.readBody(data, rest);
  }

  private pauseWanted = false;
  private readonly chunkSink = (buf: Buffer, start: number, end: number): void => {
    if (this.handler && !this.handler.onBody(buf, start, end)) this.pauseWanted = true;
  };

  private readBody(buf: Buffer, start: number): void {
    const h = this.handler!;
    switch (this.kind) {
      case 'length': {
        const take = Math.min(this.remaining, buf.length - start);
        this.remaining -= take;
        const more = h.onBody(buf, start, start + take);
        if (this.handler !== h) return;
        if (this.remaining === 0) {
          if (start + take < buf.length) this.keepAlive = false;
          this.complete();
        } else if (!more) this.pause();
        return;
      }
      case 'chunked': {
        const scanner = this.scanner!;
        this.pauseWanted = false;
        const end = scanner.scan(buf, start, this.chunkSink);
        if (this.handler !== h) return;
        if (end < 0) return this.fail(new UpstreamError('UPSTREAM_BAD_RESPONSE', `bad chunked body from ${this.origin}: ${scanner.error}`));
        if (scanner.done) {
          if (end < buf.length) this.keepAlive = false;
          this.complete();
        } else if (this.pauseWanted) this.pause();
        return;
      }
      default:
        if (!h.onBody(buf, start, buf.length) && this.handler === h) this.pause();
    }
  }

  private complete(): void {
    const h = this.handler!;
    this.handler = null;
    this.scanner = null;
    this.resume();
    const reusable = this.keepAlive && !this.socket.destroyed;
    this.phase = reusable ? Phase.IDLE : Phase.DONE;
    h.onEnd(reusable);
  }

  /** Back to its pool's idle list, for the next request to this replica. */
  release(now: number): void {
    this.reused = true;
    this.idleSince = now;
    this.pool.idle.push(this);
  }
}

/**
 * Keep-alive connections to one replica: idle ones are reused last-in first-out (the most recently
 * used is the least likely to have been closed by the replica), and closed after `idleMs`.
 */
export class UpstreamPool {
  readonly idle: UpstreamConnection[] = [];
  readonly all = new Set<UpstreamConnection>();

  constructor(
    readonly origin: string,
    private readonly connectTimeoutMs: number,
  ) {}

  /**
   * An idle connection, else a new one. `forUpgrade` (a WebSocket handshake) always gets a new plain
   * socket, which never returns to the pool.
   */
  acquire(ep: RouteEndpoint, cb: (err: UpstreamError | null, conn: UpstreamConnection) => void, forUpgrade = false): void {
    while (!forUpgrade && this.idle.length > 0) {
      const conn = this.idle.pop()!;
      if (!conn.socket.destroyed && conn.socket.readable && conn.socket.writable) return cb(null, conn);
      conn.destroy();
    }
    const conn = new UpstreamConnection(
      this.origin,
      ep,
      this.connectTimeoutMs,
      this,
      (err, c) => {
        if (err) this.all.delete(c);
        cb(err, c);
      },
      forUpgrade,
    );
    this.all.add(conn);
  }

  forget(conn: UpstreamConnection): void {
    this.all.delete(conn);
    const i = this.idle.indexOf(conn);
    if (i >= 0) this.idle.splice(i, 1);
  }

  /** Closes idle connections older than `idleMs` and times out requests without response headers. */
  sweep(now: number, idleMs: number, headersTimeoutMs: number): void {
    for (const conn of [...this.idle]) if (now - conn.idleSince > idleMs) conn.destroy();
    if (headersTimeoutMs <= 0) return;
    for (const conn of this.all) {
      if (conn.busy && conn.sentAt > 0 && now - conn.sentAt > headersTimeoutMs && !conn.hasHead()) {
        conn.timeOut('UPSTREAM_HEADERS_TIMEOUT', `${this.origin} sent no response headers within ${headersTimeoutMs} ms`);
      }
    }
  }

  close(): void {
    for (const conn of [...this.all]) conn.destroy();
  }
}

/** One UpstreamPool per replica address; pools of replicas that left the routing table are closed by `retain`. */
export class UpstreamPools {
  private readonly pools = new Map<string, UpstreamPool>();
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly opts: { headersTimeoutMs: number; connectTimeoutMs: number; idleMs?: number }) {
    this.timer = setInterval(() => this.sweep(performance.now()), 1000);
    this.timer.unref();
  }

  get(ep: RouteEndpoint): UpstreamPool {
    const origin = originOf(ep);
    let pool = this.pools.get(origin);
    if (!pool) {
      pool = new UpstreamPool(origin, this.opts.connectTimeoutMs);
      this.pools.set(origin, pool);
    }
    return pool;
  }

  sweep(now: number): void {
    for (const pool of this.pools.values()) pool.sweep(now, this.opts.idleMs ?? 4000, this.opts.headersTimeoutMs);
  }

  /** Closes the idle connections of pools whose origin is not in `live`; busy ones finish first. */
  retain(live: Set<string>): void {
    for (const [origin, pool] of this.pools) {
      if (live.has(origin)) continue;
      for (const conn of [...pool.idle]) conn.destroy();
      if (pool.all.size === 0) this.pools.delete(origin);
    }
  }

  close(): void {
    clearInterval(this.timer);
    for (const pool of this.pools.values()) pool.close();
    this.pools.clear();
  }
}
