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
