import net from 'node:net';
import { STATUS_CODES } from 'node:http';
import { ByteAccumulator, ChunkedScanner, HeadEntry, HeadError, MAX_HEAD_BYTES, RepeatedHead, RequestHead, parseRequestHead } from './parse';

const CRLF2 = Buffer.from('\r\n\r\n');
/** Unread bytes kept per connection (a pipelined request, an upload not yet wanted) before reading pauses. */
const MAX_BUFFERED = 64 * 1024;

/**
 * A response head built once for the common case (HTTP/1.1 client, connection kept) and reused while
 * the replica keeps sending the same head; see RepeatedHead.
 */
export interface PrebuiltHead {
  keepAlive: Buffer | null;
}

/** How the response body is framed for the client. */
export type ResponseFraming = 'length' | 'chunked' | 'close' | 'none';

/** Receives a request body; false from onData pauses reading until `resumeBody`. */
export interface BodyReader {
  onData(buf: Buffer, start: number, end: number): boolean;
  onEnd(): void;
  onError(message: string): void;
}

export interface RequestListener {
  /**
   * A request head arrived; the listener answers through `conn`, reading the body with `readBody`.
   * `entry.memo` is the listener's own: it is null for a new head and kept for a repeat of it.
   */
  onRequest(conn: ClientConnection, head: RequestHead, entry: HeadEntry<RequestHead>): void;
}

export interface Http1ServerOptions {
  /** A client that sent part of a head gets 408 after this long. */
  headersTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
}

const enum S {
  HEAD,
  BODY,
  WAIT,
  TUNNEL,
  CLOSED,
}

/**
 * One client connection: parses request heads, frames request bodies (passing the client's bytes on
 * unchanged), writes responses and keeps the connection alive between exchanges. Requests are handled
 * one at a time; pipelined ones wait in the buffer.
 */
export class ClientConnection {
  head: RequestHead | null = null;
  /** Called once when the client goes away (or the connection is cut) during an exchange. */
  onGone: (() => void) | null = null;
  /** Status of the response sent (0 before the head is written). */
  status = 0;
  lastActive: number;
  private state = S.HEAD;
  private buf: Buffer | null = null;
  private headStartedAt = 0;
  private reader: BodyReader | null = null;
  private readerPaused = false;
  private bodyRemaining = 0;
  private scanner: ChunkedScanner | null = null;
  private bodyDone = true;
  private closeAfter = false;
  private pendingHead: string | Buffer | null = null;
  private readonly repeated = new RepeatedHead<RequestHead>();
  private socketPaused = false;
  private readonly input = new ByteAccumulator();
  /** Bytes at the start of `buf` already searched for the end of the head (no rescanning per read). */
  private headScanned = 0;

  constructor(
    readonly socket: net.Socket,
    private readonly server: Http1Server,
  ) {
    this.lastActive = performance.now();
    socket.setNoDelay(true);
    socket.on('data', this.onData);
    socket.on('error', noop);
    socket.on('close', this.onClose);
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  get headersSent(): boolean {
    return this.status !== 0;
  }

  get closed(): boolean {
    return this.state === S.CLOSED;
  }

  private readonly onData = (d: Buffer): void => {
    if (this.state === S.CLOSED || this.state === S.TUNNEL) return;
    if (this.buf === null) {
      this.buf = d;
      this.input.release();
      if (this.state === S.HEAD) this.headStartedAt = performance.now();
    } else this.buf = this.input.append(this.buf, d);
    this.pump();
  };

  private readonly onClose = (): void => {
    const wasOpen = this.state !== S.CLOSED;
    this.state = S.CLOSED;
    this.server.forget(this);
    const gone = this.onGone;
    this.onGone = null;
    if (wasOpen && gone) gone();
    if (this.reader && !this.bodyDone) {
      const r = this.reader;
      this.reader = null;
      r.onError('the client closed the connection mid-body');
    }
  };

  private pump(): void {
    for (;;) {
      switch (this.state) {
        case S.HEAD:
          if (this.buf === null || !this.readHead()) return;
          break;
        case S.BODY:
          if (this.buf === null || this.reader === null || this.readerPaused) return this.limitBuffer();
          this.feedBody();
          break;
        case S.WAIT:
          return this.limitBuffer();
        default:
          return;
      }
    }
  }

  /** Stops reading from the socket while too many unread bytes wait. */
  private limitBuffer(): void {
    if (!this.socketPaused && this.buf !== null && this.buf.length > MAX_BUFFERED) {
      this.socketPaused = true;
      this.socket.pause();
    }
  }

  private resumeSocket(): void {
    if (this.socketPaused && this.state !== S.CLOSED) {
      this.socketPaused = false;
      this.socket.resume();
    }
  }

  /** Parses one head from the buffer; false when more bytes are needed or the connection ended. */
  private readHead(): boolean {
    const buf = this.buf!;
    let start = 0;
    // RFC 9112 §2.2: empty lines before a request line are ignored.
    while (start + 1 < buf.length && buf[start] === 0x0d && buf[start + 1] === 0x0a) start += 2;
    const at = buf.indexOf(CRLF2, Math.max(start, this.headScanned - 3));
    if (at < 0) {
      if (buf.length - start > MAX_HEAD_BYTES) this.refuse(431, 'HEADERS_TOO_LARGE', `the request head exceeds ${MAX_HEAD_BYTES} bytes`);
      else if (start > 0) this.buf = start < buf.length ? buf.subarray(start) : null;
      this.headScanned = this.buf?.length ?? 0;
      return false;
    }
    this.headScanned = 0;
    if (at - start > MAX_HEAD_BYTES) {
      this.refuse(431, 'HEADERS_TOO_LARGE', `the request head exceeds ${MAX_HEAD_BYTES} bytes`);
      return false;
    }
    let entry = this.repeated.get(buf, start, at, '');
    if (entry === null) {
      try {
        entry = this.repeated.set(buf, start, at, '', parseRequestHead(buf.toString('latin1', start, at)));
      } catch (e) {
        const err = e instanceof HeadError ? e : new HeadError(400, String(e));
        this.refuse(err.status, 'BAD_REQUEST', err.message);
        return false;
      }
    }
    const head = entry.head;
    const rest = at + 4;
    this.buf = rest < buf.length ? buf.subarray(rest) : null;
    this.head = head;
    this.status = 0;
    this.reader = null;
    this.readerPaused = false;
    this.closeAfter = !head.keepAlive || this.server.closing;
    if (head.body === 'none') {
      this.bodyDone = true;
      this.state = S.WAIT;
    } else {
      this.bodyDone = false;
      this.state = S.BODY;
      this.bodyRemaining = head.contentLength;
      this.scanner = head.body === 'chunked' ? new ChunkedScanner() : null;
    }
    this.server.listener.onRequest(this, head, entry);
    return this.state === S.BODY || this.state === S.WAIT;
  }

  /** Answers a head this server will not handle, then closes. */
  private refuse(status: number, code: string, message: string): void {
    this.closeAfter = true;
    this.bodyDone = true;
    this.state = S.WAIT;
    this.head = null;
    this.sendError(status, code, message);
  }

  // ------------------------------------------------------------------------------------------ request body

  /** Starts (or continues) delivering the request body to `reader`. */
  readBody(reader: BodyReader): void {
    this.reader = reader;
    this.readerPaused = false;
    if (this.state !== S.BODY) return;
    this.resumeSocket();
    if (this.buf !== null) this.pump();
  }

  resumeBody(): void {
    if (!this.readerPaused) return;
    this.readerPaused = false;
    this.resumeSocket();
    if (this.buf !== null) this.pump();
  }

  private feedBody(): void {
    const buf = this.buf!;
    const reader = this.reader!;
    let end: number;
    let more = true;
    if (this.scanner === null) {
      end = Math.min(this.bodyRemaining, buf.length);
      this.bodyRemaining -= end;
      more = reader.onData(buf, 0, end);
    } else {
      const scanner = this.scanner;
      end = scanner.scan(buf, 0, (b, s, e) => {
        if (!reader.onData(b, s, e)) more = false;
      });
      if (end < 0) {
        this.buf = null;
        this.reader = null;
        const message = `malformed chunked request body: ${scanner.error}`;
        if (!this.headersSent) this.refuse(400, 'BAD_REQUEST', message);
        else this.destroy();
        reader.onError(message);
        return;
      }
    }
    this.buf = end < buf.length ? buf.subarray(end) : null;
    if (this.bodyRemaining === 0 && (this.scanner === null || this.scanner.done)) {
      this.bodyDone = true;
      this.scanner = null;
      this.reader = null;
      if (this.state === S.BODY) this.state = S.WAIT;
      reader.onEnd();
    } else if (!more) {
      this.readerPaused = true;
      this.socketPaused = true;
      this.socket.pause();
    }
  }

  // ------------------------------------------------------------------------------------------ response

  /** Sends `100 Continue` when the client waits for it before sending the body. */
  sendContinue(): void {
    if (this.head?.expectContinue && this.head.minor === 1 && !this.bodyDone && this.status === 0) this.socket.write('HTTP/1.1 100 Continue\r\n\r\n');
  }

  /** Relays a 1xx (other than 100 and 101) to an HTTP/1.1 client. */
  writeInformational(status: number, reason: string, lines: string): void {
    if (this.head?.minor === 1 && status !== 100 && this.status === 0 && this.state !== S.CLOSED) this.socket.write(`HTTP/1.1 ${status} ${reason}\r\n${lines}\r\n`, 'latin1');
  }

  /**
   * Writes the response head (held until the first body bytes or `end`, so both go out in one write).
   * `lines` are "name: value\r\n" field lines without framing or connection fields; this adds them.
   */
  writeHead(status: number, reason: string, lines: string, framing: ResponseFraming, prebuilt?: PrebuiltHead): void {
    if (this.status !== 0 || this.state === S.CLOSED) return;
    this.status = status;
    // An unread request body cannot be skipped safely once the answer is out: close after it.
    if (!this.bodyDone && this.reader === null) this.closeAfter = true;
    if (framing === 'close' || this.server.closing) this.closeAfter = true;
    const minor = this.head?.minor ?? 1;
    if (prebuilt !== undefined && !this.closeAfter && minor === 1) {
      this.pendingHead = prebuilt.keepAlive ??= Buffer.from(`HTTP/1.1 ${status} ${reason || STATUS_CODES[status] || 'Unknown'}\r\n${lines}${framing === 'chunked' ? 'transfer-encoding: chunked\r\n' : ''}\r\n`, 'latin1');
      return;
    }
    let extra = '';
    if (framing === 'chunked') extra = 'transfer-encoding: chunked\r\n';
    if (this.closeAfter) extra += 'connection: close\r\n';
    else if (minor === 0) extra += 'connection: keep-alive\r\n';
    this.pendingHead = `HTTP/1.1 ${status} ${reason || STATUS_CODES[status] || 'Unknown'}\r\n${lines}${extra}\r\n`;
  }

  /** Response body bytes; false when the client wants a drain first (see `onDrain`). */
  write(buf: Buffer, start = 0, end = buf.length): boolean {
    if (this.state === S.CLOSED) return true;
    const chunk = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    const head = this.pendingHead;
    if (head !== null) {
      // Head and first body bytes in one buffer, one write (cheaper than cork + writev).
      this.pendingHead = null;
      if (typeof head === 'string') {
        const out = Buffer.allocUnsafe(head.length + chunk.length);
        out.write(head, 0, 'latin1');
        chunk.copy(out, head.length);
        return this.socket.write(out);
      }
      return this.socket.write(Buffer.concat([head, chunk], head.length + chunk.length));
    }
    return this.socket.write(chunk);
  }

  /** Calls `f` once the client's socket drained. */
  onDrain(f: () => void): void {
    this.socket.once('drain', f);
  }

  /** The response is complete: keep the connection for the next request, or close it. */
  end(): void {
    if (this.state === S.CLOSED || this.state === S.TUNNEL) return;
    const head = this.pendingHead;
    this.pendingHead = null;
    this.onGone = null;
    this.lastActive = performance.now();
    if (!this.bodyDone || this.server.closing) this.closeAfter = true;
    if (this.closeAfter) {
      this.state = S.CLOSED;
      this.server.forget(this);
      this.resumeSocket();
      if (head !== null) this.socket.end(head, 'latin1');
      else this.socket.end();
      // A client that keeps its side open does not keep the socket: destroy after the flush.
      this.socket.once('finish', () => this.socket.destroy());
      return;
    }
    if (head !== null) this.socket.write(head, 'latin1');
    this.state = S.HEAD;
    this.head = null;
    this.reader = null;
    this.resumeSocket();
    // A pipelined request already waiting: handle it on the next turn (no recursion through end()).
    if (this.buf !== null) {
      this.headStartedAt = this.lastActive;
      setImmediate(() => this.pump());
    }
  }

  /** A complete small response: head and body in one write. */
  sendBody(status: number, reason: string, lines: string, body: Buffer | string): void {
    const bytes = typeof body === 'string' ? Buffer.from(body) : body;
    this.writeHead(status, reason, `${lines}content-length: ${bytes.length}\r\n`, 'length');
    if (this.head?.method === 'HEAD' || bytes.length === 0) return this.end();
    this.write(bytes);
    this.end();
  }

  /** A JSON error `{ error: { code, message } }`. */
  sendError(status: number, code: string, message: string, extraLines = ''): void {
    if (this.status !== 0 || this.state === S.CLOSED) return;
    this.sendBody(status, '', `content-type: application/json\r\n${extraLines}`, JSON.stringify({ error: { code, message } }));
  }

  /** Cuts the connection (an answer that cannot be completed). */
  destroy(): void {
    this.socket.destroy();
  }

  /** Hands the socket over (a WebSocket tunnel); returns bytes the client already sent after the head. */
  takeOver(): { socket: net.Socket; rest: Buffer | null } {
    this.state = S.TUNNEL;
    this.socket.off('data', this.onData);
    this.server.forget(this);
    this.resumeSocket();
    const rest = this.buf;
    this.buf = null;
    return { socket: this.socket, rest };
  }

  /** Timeouts: an unfinished head (slowloris) and an idle keep-alive connection. */
  sweep(now: number, opts: Http1ServerOptions): void {
    if (this.state !== S.HEAD) return;
    if (this.buf !== null) {
      if (now - this.headStartedAt > opts.headersTimeoutMs) {
        this.closeAfter = true;
        this.sendError(408, 'REQUEST_TIMEOUT', `the request head did not arrive within ${opts.headersTimeoutMs} ms`);
      }
    } else if (now - this.lastActive > opts.keepAliveTimeoutMs || this.server.closing) {
      this.state = S.CLOSED;
      this.socket.destroy();
    }
  }
}

const noop = () => undefined;

/** A plain-TCP HTTP/1.1 server (net.Server, so cluster workers can share it) built on ClientConnection. */
export class Http1Server {
  readonly net: net.Server;
  closing = false;
  private readonly connections = new Set<ClientConnection>();
  private readonly timer: NodeJS.Timeout;
  private drained: (() => void) | null = null;

  constructor(
    readonly listener: RequestListener,
    private readonly opts: Http1ServerOptions,
  ) {
    this.net = net.createServer({ noDelay: true }, (socket) => {
      if (this.closing) return void socket.destroy();
      this.connections.add(new ClientConnection(socket, this));
    });
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const c of this.connections) c.sweep(now, this.opts);
    }, 1000);
    this.timer.unref();
  }

  forget(conn: ClientConnection): void {
    this.connections.delete(conn);
    if (this.closing && this.connections.size === 0) this.drained?.();
  }

  async listen(port: number, host: string): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.net.once('error', reject);
      this.net.listen(port, host, () => {
        this.net.off('error', reject);
        resolve();
      });
    });
    return (this.net.address() as net.AddressInfo).port;
  }

  /**
   * Stops accepting, closes idle connections, lets in-flight exchanges finish (each connection closes
   * after its response) for up to `drainMs`, then cuts what is left (long streams, tunnels).
   */
  async close(drainMs: number, tunnels: Set<net.Socket>): Promise<void> {
    this.closing = true;
    clearInterval(this.timer);
    const closed = new Promise<void>((r) => this.net.close(() => r()));
    const now = performance.now();
    for (const c of [...this.connections]) c.sweep(now, this.opts);
    if (this.connections.size > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, drainMs);
        this.drained = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    for (const c of [...this.connections]) c.destroy();
    for (const t of tunnels) t.destroy();
    await closed;
  }
}
