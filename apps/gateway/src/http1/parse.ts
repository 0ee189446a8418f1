/**
 * HTTP/1.1 message heads and body framing (RFC 9112), strict where a lenient reading could let a
 * request be framed one way here and another way by the replica (request smuggling): CRLF only, no
 * obs-fold, no whitespace before the colon, one Host, Content-Length and Transfer-Encoding never
 * together, chunk sizes in hex only. The gateway rewrites every head it forwards, so only body bytes
 * pass through unchanged, and those are framed by the scanners below.
 */

/** A head this parser refuses, with the status to answer (400, 431, 501, 505) and why. */
export class HeadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const MAX_HEAD_BYTES = 64 * 1024;
export const MAX_HEADERS = 200;
const MAX_TRAILER_BYTES = 16 * 1024;

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/* eslint-disable no-control-regex -- these patterns exist to find control characters */
/** Control characters other than HTAB are not allowed in a field value (nor in a request target). */
const BAD_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;
const REQUEST_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\x00-\x20\x7f]+) HTTP\/(\d)\.(\d)$/;
const STATUS_LINE = /^HTTP\/1\.([01]) (\d{3})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?$/;
/* eslint-enable no-control-regex */

export type BodyKind = 'none' | 'length' | 'chunked' | 'close';

/** What both heads share: header fields as sent, and the framing and connection facts derived from them. */
interface HeadFields {
  /** Flat [name, value, name, value, ...], names as sent, values without surrounding SP/HTAB. */
  headers: string[];
  /** Lower-cased names, parallel to the names in `headers` (index i ↔ headers[2i]). */
  names: string[];
  minor: number;
  body: BodyKind;
  /** For body 'length'. */
  contentLength: number;
  /** Tokens of the Connection header, lower-cased (close, keep-alive, upgrade, listed field names). */
  connection: Set<string> | null;
}

export interface RequestHead extends HeadFields {
  method: string;
  target: string;
  host: string | undefined;
  /** Whether the client wants the connection kept after this exchange. */
  keepAlive: boolean;
  /** The Upgrade header when Connection lists "upgrade" (a WebSocket handshake, say). */
  upgrade: string | undefined;
  expectContinue: boolean;
}

export interface ResponseHead extends HeadFields {
  status: number;
  reason: string;
  /** Whether the replica keeps the connection open after this response. */
  keepAlive: boolean;
}

const isWs = (c: number) => c === 0x20 || c === 0x09;

function trimWs(s: string): string {
  let a = 0;
  let b = s.length;
  while (a < b && isWs(s.charCodeAt(a))) a++;
  while (b > a && isWs(s.charCodeAt(b - 1))) b--;
  return a === 0 && b === s.length ? s : s.slice(a, b);
}

const lowerCache = new Map<string, string>();
function lower(name: string): string {
  let l = lowerCache.get(name);
  if (l === undefined) {
    l = name.toLowerCase();
    if (lowerCache.size < 2048) lowerCache.set(name, l);
  }
  return l;
}

function addTokens(into: Set<string> | null, value: string): Set<string> {
  const out = into ?? new Set<string>();
  for (const t of value.split(',')) {
    const token = trimWs(t).toLowerCase();
    if (token) out.add(token);
  }
  return out;
}

/** Parses the field lines (lines[1..]) shared by requests and responses; `what` names the sender in errors. */
function parseFields(lines: string[], status: number): Omit<HeadFields, 'minor' | 'body' | 'contentLength'> & {
  cl: string | undefined;
  te: string | undefined;
  hosts: number;
  host: string | undefined;
  upgradeValue: string | undefined;
  expect: string | undefined;
} {
  if (lines.length - 1 > MAX_HEADERS) throw new HeadError(431, `more than ${MAX_HEADERS} header fields`);
  const headers: string[] = new Array((lines.length - 1) * 2);
  const names: string[] = new Array(lines.length - 1);
  let connection: Set<string> | null = null;
  let cl: string | undefined;
  let te: string | undefined;
  let hosts = 0;
  let host: string | undefined;
  let upgradeValue: string | undefined;
  let expect: string | undefined;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    const colon = line.indexOf(':');
    if (colon <= 0) {
      if (line.length > 0 && isWs(line.charCodeAt(0))) throw new HeadError(status, 'obsolete line folding in a header field is not accepted');
      throw new HeadError(status, `malformed header line "${line.slice(0, 40)}"`);
    }
    const name = line.slice(0, colon);
    if (!TOKEN.test(name)) throw new HeadError(status, `invalid header field name "${name.slice(0, 40)}"`);
    const raw = line.slice(colon + 1);
    if (BAD_VALUE.test(raw)) throw new HeadError(status, `control character in the value of header "${name}"`);
    const value = trimWs(raw);
    const n = lower(name);
    headers[(i - 1) * 2] = name;
    headers[(i - 1) * 2 + 1] = value;
    names[i - 1] = n;
    switch (n) {
      case 'connection':
        connection = addTokens(connection, value);
        break;
      case 'content-length':
        cl = cl === undefined ? value : `${cl},${value}`;
        break;
      case 'transfer-encoding':
        te = te === undefined ? value : `${te},${value}`;
        break;
      case 'host':
        hosts++;
        host = value;
        break;
      case 'upgrade':
        upgradeValue = value;
        break;
      case 'expect':
        expect = value;
        break;
    }
  }
  return { headers, names, connection, cl, te, hosts, host, upgradeValue, expect };
}

/** Content-Length: digits only; a list (or repeated field) is accepted only when all values agree. */
function parseContentLength(cl: string, status: number): number {
  let value: string | undefined;
  for (const part of cl.split(',')) {
    const v = trimWs(part);
    if (!/^\d{1,15}$/.test(v)) throw new HeadError(status, `invalid Content-Length "${cl.slice(0, 40)}"`);
    if (value !== undefined && Number(v) !== Number(value)) throw new HeadError(status, `conflicting Content-Length values "${cl.slice(0, 40)}"`);
    value = v;
  }
  return Number(value);
}

/** The transfer codings, lower-cased; the gateway frames only "chunked" (compression codings pass as Content-Encoding). */
function codings(te: string): string[] {
  return te
    .split(',')
    .map((t) => trimWs(t).toLowerCase())
    .filter(Boolean);
}

function splitHead(text: string): string[] {
  return text.split('\r\n');
}

/**
 * Parses a request head (request line and fields, without the final empty line) as latin1 text.
 * Throws HeadError for anything it will not forward.
 */
export function parseRequestHead(text: string): RequestHead {
  const lines = splitHead(text);
  const m = REQUEST_LINE.exec(lines[0]);
  if (!m) throw new HeadError(400, `malformed request line "${lines[0].slice(0, 60)}"`);
  const method = m[1];
  const target = m[2];
  if (m[3] !== '1' || (m[4] !== '0' && m[4] !== '1')) throw new HeadError(505, `HTTP version ${m[3]}.${m[4]} is not supported; use HTTP/1.1`);
  const minor = m[4] === '1' ? 1 : 0;
  const f = parseFields(lines, 400);
  if (f.hosts > 1) throw new HeadError(400, 'more than one Host header');
  if (minor === 1 && f.hosts === 0) throw new HeadError(400, 'missing Host header (required in HTTP/1.1)');
  let body: BodyKind = 'none';
  let contentLength = 0;
  if (f.te !== undefined) {
    if (minor === 0) throw new HeadError(400, 'Transfer-Encoding is not allowed in an HTTP/1.0 request');
    if (f.cl !== undefined) throw new HeadError(400, 'both Transfer-Encoding and Content-Length are set; send only one');
    const c = codings(f.te);
    if (c.length !== 1 || c[0] !== 'chunked') throw new HeadError(c.at(-1) === 'chunked' ? 501 : 400, `unsupported Transfer-Encoding "${f.te.slice(0, 40)}"; only "chunked" is accepted`);
    body = 'chunked';
  } else if (f.cl !== undefined) {
    contentLength = parseContentLength(f.cl, 400);
    if (contentLength > 0) body = 'length';
  }
  const conn = f.connection;
  const keepAlive = minor === 1 ? !conn?.has('close') : conn?.has('keep-alive') === true && !conn.has('close');
  const upgrade = conn?.has('upgrade') && f.upgradeValue ? f.upgradeValue : undefined;
  const expectContinue = f.expect !== undefined && f.expect.toLowerCase() === '100-continue';
  return { method, target, minor, headers: f.headers, names: f.names, body, contentLength, connection: conn, host: f.host, keepAlive, upgrade, expectContinue };
}

/**
 * Parses a response head. `request` tells which responses carry no body (HEAD, 1xx, 204, 304).
 * Throws HeadError(502) for a head the gateway cannot relay.
 */
export function parseResponseHead(text: string, requestMethod: string): ResponseHead {
  const lines = splitHead(text);
  const m = STATUS_LINE.exec(lines[0]);
  if (!m) throw new HeadError(502, `malformed status line from the replica "${lines[0].slice(0, 60)}"`);
  const minor = m[1] === '1' ? 1 : 0;
  const status = Number(m[2]);
  const reason = m[3] ?? '';
  const f = parseFields(lines, 502);
  let body: BodyKind;
  let contentLength = 0;
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) {
    body = 'none';
    // A HEAD answer may carry the Content-Length of the GET it stands for; keep a valid one for the client.
    if (f.cl !== undefined) contentLength = parseContentLength(f.cl, 502);
  } else if (f.te !== undefined) {
    const c = codings(f.te);
    // RFC 9112 §6.3: chunked last → chunked (any other coding before it is the client's business, via
    // Content-Encoding semantics it cannot have here, so refuse); otherwise the body runs until close.
    if (c.at(-1) === 'chunked') {
      if (c.length !== 1) throw new HeadError(502, `unsupported Transfer-Encoding "${f.te.slice(0, 40)}" from the replica`);
      body = 'chunked';
    } else body = 'close';
  } else if (f.cl !== undefined) {
    contentLength = parseContentLength(f.cl, 502);
    body = 'length';
  } else body = 'close';
  const conn = f.connection;
  const keepAlive = body !== 'close' && (minor === 1 ? !conn?.has('close') : conn?.has('keep-alive') === true && !conn.has('close'));
  return { status, reason, minor, headers: f.headers, names: f.names, body, contentLength, connection: conn, keepAlive };
}

// ---------------------------------------------------------------------------------------------- bodies

/** Receives body bytes found by a scanner (raw framing, or decoded data). */
export type BodySink = (buf: Buffer, start: number, end: number) => void;

const enum C {
  SIZE,
  EXT,
  SIZE_LF,
  DATA,
  DATA_CR,
  DATA_LF,
  TRAILER_START,
  TRAILER_LINE,
  TRAILER_LF,
  FINAL_LF,
  DONE,
}

/** A control character other than HTAB: not allowed in chunk extensions and trailer fields. */
const isControl = (c: number) => (c < 0x20 && c !== 0x09) || c === 0x7f;

const hexValue = (c: number) => (c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x61 && c <= 0x66 ? c - 0x57 : c >= 0x41 && c <= 0x46 ? c - 0x37 : -1);

/**
 * Finds the end of a chunked body (RFC 9112 §7.1), strictly: hex sizes of at most 12 digits, CRLF
 * line ends, extensions and trailer lines free of control characters. `scan` returns the offset just
 * past the bytes it consumed (all of `buf` unless the body ended inside it), or -1 with `error` set.
 * With `decode`, the sink gets only chunk data; without, it gets the raw framed bytes.
 */
export class ChunkedScanner {
  error: string | null = null;
  private state = C.SIZE;
  private size = 0;
  private digits = 0;
  private trailerBytes = 0;

  constructor(private readonly decode = false) {}

  get done(): boolean {
    return this.state === C.DONE;
  }

  scan(buf: Buffer, start: number, sink: BodySink | null): number {
    let i = start;
    const end = buf.length;
    let rawFrom = start;
    while (i < end && this.state !== C.DONE) {
      const c = buf[i];
      switch (this.state) {
        case C.SIZE: {
          const h = hexValue(c);
          if (h >= 0) {
            if (++this.digits > 12) return this.fail('chunk size too large');
            this.size = this.size * 16 + h;
          } else if (this.digits === 0) {
            return this.fail('chunk size expected');
          } else if (c === 0x3b /* ; */) this.state = C.EXT;
          else if (c === 0x0d) this.state = C.SIZE_LF;
          else return this.fail('invalid character in chunk size');
          i++;
          break;
        }
        case C.EXT:
          if (c === 0x0d) this.state = C.SIZE_LF;
          else if (isControl(c)) return this.fail('invalid character in chunk extension');
          i++;
          break;
        case C.SIZE_LF:
          if (c !== 0x0a) return this.fail('chunk size line must end with CRLF');
          i++;
          if (this.size === 0) this.state = C.TRAILER_START;
          else this.state = C.DATA;
          if (this.decode) rawFrom = i;
          break;
        case C.DATA: {
          const take = Math.min(this.size, end - i);
          if (this.decode && sink && take > 0) sink(buf, i, i + take);
          i += take;
          this.size -= take;
          if (this.size === 0) this.state = C.DATA_CR;
          break;
        }
        case C.DATA_CR:
          if (c !== 0x0d) return this.fail('chunk data must be followed by CRLF');
          this.state = C.DATA_LF;
          i++;
          break;
        case C.DATA_LF:
          if (c !== 0x0a) return this.fail('chunk data must be followed by CRLF');
          this.state = C.SIZE;
          this.digits = 0;
          this.size = 0;
          i++;
          break;
        case C.TRAILER_START:
          if (c === 0x0d) this.state = C.FINAL_LF;
          else if (c <= 0x20 || c === 0x7f) return this.fail('invalid trailer field'); // whitespace (folding) or control
          else this.state = C.TRAILER_LINE;
          i++;
          break;
        case C.TRAILER_LINE:
          if (++this.trailerBytes > MAX_TRAILER_BYTES) return this.fail('trailer fields too large');
          if (c === 0x0d) this.state = C.TRAILER_LF;
          else if (isControl(c)) return this.fail('invalid character in a trailer field');
          i++;
          break;
        case C.TRAILER_LF:
          if (c !== 0x0a) return this.fail('trailer line must end with CRLF');
          this.state = C.TRAILER_START;
          i++;
          break;
        case C.FINAL_LF:
          if (c !== 0x0a) return this.fail('chunked body must end with CRLF');
          this.state = C.DONE;
          i++;
          break;
      }
    }
    if (!this.decode && sink && i > rawFrom) sink(buf, rawFrom, i);
    return i;
  }

  private fail(message: string): number {
    this.error = message;
    return -1;
  }
}

// ---------------------------------------------------------------------------------------------- repeats

/** A parsed head and whatever its user derived from it (routing, the head to forward), kept together. */
export interface HeadEntry<H> {
  head: H;
  memo: unknown;
}

const MAX_REMEMBERED_HEAD = 4096;

/**
 * The last head seen on one connection. Clients on a keep-alive connection tend to send the same head
 * again and again (replicas too, apart from Date once a second); a byte-for-byte repeat reuses the
 * parse and the entry's memo instead of parsing and rewriting it again.
 */
export class RepeatedHead<H> {
  private bytes: Buffer | null = null;
  private tag = '';
  private entry: HeadEntry<H> | null = null;

  get(buf: Buffer, start: number, end: number, tag: string): HeadEntry<H> | null {
    const b = this.bytes;
    if (b === null || b.length !== end - start || this.tag !== tag || buf.compare(b, 0, b.length, start, end) !== 0) return null;
    return this.entry;
  }

  set(buf: Buffer, start: number, end: number, tag: string, head: H): HeadEntry<H> {
    const entry: HeadEntry<H> = { head, memo: null };
    if (end - start <= MAX_REMEMBERED_HEAD) {
      this.bytes = Buffer.from(buf.subarray(start, end));
      this.tag = tag;
      this.entry = entry;
    } else {
      this.bytes = null;
      this.entry = null;
    }
    return entry;
  }
}

// ---------------------------------------------------------------------------------------------- input

/**
 * Appends socket reads to the unconsumed bytes in amortized linear time: a head or body that arrives
 * a few bytes at a time (a slow or hostile peer) would otherwise be copied whole on every read.
 */
export class ByteAccumulator {
  private store: Buffer | null = null;
  private used = 0;

  /** `pending` (unconsumed bytes, possibly a view into the store) followed by `more`. */
  append(pending: Buffer, more: Buffer): Buffer {
    const store = this.store;
    if (
      store !== null &&
      pending.buffer === store.buffer &&
      pending.byteOffset + pending.length === store.byteOffset + this.used &&
      this.used + more.length <= store.length
    ) {
      more.copy(store, this.used);
      this.used += more.length;
      return store.subarray(pending.byteOffset - store.byteOffset, this.used);
    }
    const need = pending.length + more.length;
    // At least 8 KiB: Buffer.allocUnsafe gives buffers of 4 KiB and more their own memory (not the pool).
    const next = Buffer.allocUnsafe(Math.max(need * 2, 8192));
    pending.copy(next, 0);
    more.copy(next, pending.length);
    this.store = next;
    this.used = need;
    return next.subarray(0, need);
  }

  /** Drops the store once nothing is pending (an idle keep-alive connection keeps no memory). */
  release(): void {
    this.store = null;
    this.used = 0;
  }
}
