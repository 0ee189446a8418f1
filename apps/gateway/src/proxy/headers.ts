import type { IncomingHttpHeaders } from 'node:http';

/** Headers that describe one connection, never forwarded (RFC 9110 §7.6.1), plus the legacy Proxy-* ones. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'proxy-authenticate',
  'proxy-authorization',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  // Node answers `Expect: 100-continue` itself; the upstream gets the body without waiting.
  'expect',
]);

export type HeaderMap = Record<string, string | string[]>;

/**
 * Copies `headers` without hop-by-hop headers and without any header the Connection header lists.
 * With `upgrade` (the WebSocket path) Connection: upgrade and Upgrade are kept.
 */
export function stripHopByHop(headers: IncomingHttpHeaders | HeaderMap, opts: { upgrade?: boolean } = {}): HeaderMap {
  const listed = new Set<string>();
  const conn = headers.connection;
  for (const v of Array.isArray(conn) ? conn : conn ? [conn] : []) {
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase();
      if (t) listed.add(t);
    }
  }
  const out: HeaderMap = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined) continue;
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower) || listed.has(lower)) continue;
    out[lower] = value as string | string[];
  }
  if (opts.upgrade && headers.upgrade) {
    out.connection = 'upgrade';
    out.upgrade = headers.upgrade as string;
  }
  return out;
}

export function clientAddress(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  return remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
}

/**
 * Adds X-Forwarded-For (appended, like nginx's $proxy_add_x_forwarded_for), -Proto and -Host.
 * Client-sent -Proto/-Host are kept only when the gateway sits behind a trusted load balancer.
 */
export function addForwardedHeaders(
  headers: HeaderMap,
  client: { address: string; host: string | undefined; proto: 'http' | 'https' },
  trustForwarded: boolean,
): HeaderMap {
  const prior = headers['x-forwarded-for'];
  const priorText = Array.isArray(prior) ? prior.join(', ') : prior;
  headers['x-forwarded-for'] = priorText ? `${priorText}, ${client.address}` : client.address;
  if (!trustForwarded || !headers['x-forwarded-proto']) headers['x-forwarded-proto'] = client.proto;
  if (!trustForwarded || !headers['x-forwarded-host']) {
    if (client.host) headers['x-forwarded-host'] = client.host;
    else delete headers['x-forwarded-host'];
  }
  return headers;
}

export const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

const lowerNames = new Map<string, string>();
/** Lower-cases a header name, caching the few distinct spellings a gateway sees. */
function lower(name: string): string {
  let l = lowerNames.get(name);
  if (l === undefined) {
    l = name.toLowerCase();
    if (lowerNames.size < 1024) lowerNames.set(name, l);
  }
  return l;
}

/** Names listed in Connection header values (lower-cased), or null when there are none beyond keep-alive/close. */
function connectionListed(values: string[] | null): Set<string> | null {
  if (!values) return null;
  let out: Set<string> | null = null;
  for (const v of values) {
    for (const token of v.split(',')) {
      const t = token.trim().toLowerCase();
      if (t && t !== 'keep-alive' && t !== 'close') (out ??= new Set()).add(t);
    }
  }
  return out;
}

export interface ForwardRequestHeaders {
  /** Flat [name, value, name, value, ...] list for the upstream request. */
  headers: string[];
  host: string | undefined;
  contentLength: string | undefined;
  transferEncoding: string | undefined;
}

/**
 * The hot-path form of `stripHopByHop` + `addForwardedHeaders` for a proxied request: one pass over
 * Node's `rawHeaders` (no header object is built), keeping the client's spelling and order.
 */
export function forwardRequestHeaders(raw: string[], client: { address: string; proto: 'http' | 'https' }, trustForwarded: boolean): ForwardRequestHeaders {
  let connection: string[] | null = null;
  for (let i = 0; i < raw.length; i += 2) if (lower(raw[i]) === 'connection') (connection ??= []).push(raw[i + 1]);
  const listed = connectionListed(connection);
  const out: string[] = [];
  let host: string | undefined;
  let contentLength: string | undefined;
  let transferEncoding: string | undefined;
  let xff: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = lower(raw[i]);
    const value = raw[i + 1];
    if (HOP_BY_HOP.has(name)) {
      if (name === 'transfer-encoding') transferEncoding = transferEncoding === undefined ? value : `${transferEncoding}, ${value}`;
      continue;
    }
    if (listed !== null && listed.has(name)) continue;
    switch (name) {
      case 'host':
        // Like Node's req.headers, the first Host counts; a second one is not forwarded.
        if (host !== undefined) continue;
        host = value;
        break;
      case 'content-length':
        contentLength = value;
        break;
      case 'x-forwarded-for':
        xff = xff === undefined ? value : `${xff}, ${value}`;
        continue;
      case 'x-forwarded-proto':
        xfProto ??= value;
        continue;
      case 'x-forwarded-host':
        xfHost ??= value;
        continue;
    }
    out.push(raw[i], value);
  }
  out.push('x-forwarded-for', xff ? `${xff}, ${client.address}` : client.address);
  out.push('x-forwarded-proto', trustForwarded && xfProto ? xfProto : client.proto);
  const fwdHost = trustForwarded && xfHost ? xfHost : host;
  if (fwdHost) out.push('x-forwarded-host', fwdHost);
  return { headers: out, host, contentLength, transferEncoding };
}

/**
 * Response headers from undici's raw list (Buffers) for `res.writeHead`: a flat string list without
 * hop-by-hop headers (and those Connection lists), plus the Content-Length (NaN when absent).
 */
export function forwardResponseHeaders(raw: Buffer[] | string[]): { headers: string[]; contentLength: number } {
  const names: string[] = new Array(raw.length >> 1);
  let connection: string[] | null = null;
  for (let i = 0, j = 0; i < raw.length; i += 2, j++) {
    const n = lower(raw[i].toString('latin1'));
    names[j] = n;
    if (n === 'connection') (connection ??= []).push(raw[i + 1].toString('latin1'));
  }
  const listed = connectionListed(connection);
  const out: string[] = [];
  let contentLength = NaN;
  for (let i = 0, j = 0; i < raw.length; i += 2, j++) {
    const name = names[j];
    if (HOP_BY_HOP.has(name) || (listed !== null && listed.has(name))) continue;
    const value = raw[i + 1].toString('latin1');
    if (name === 'content-length') contentLength = Number(value);
    out.push(name, value);
  }
  return { headers: out, contentLength };
}
