import type { RequestHead, ResponseHead } from '../http1/parse';

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
  // The gateway answers `Expect: 100-continue` itself; the replica gets the body without waiting.
  'expect',
]);

export const IDEMPOTENT_METHODS = new Set(['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']);

export function clientAddress(remoteAddress: string | undefined): string {
  if (!remoteAddress) return 'unknown';
  return remoteAddress.startsWith('::ffff:') ? remoteAddress.slice(7) : remoteAddress;
}

/** Whether a field is dropped when forwarding: hop-by-hop, or named by the Connection header. */
const dropped = (name: string, connection: Set<string> | null) => HOP_BY_HOP.has(name) || (connection !== null && connection.has(name));

/**
 * The head the replica gets for a client request, as one string: the request line (always HTTP/1.1,
 * origin-form `path`), the client's fields in its spelling and order without hop-by-hop ones,
 * X-Forwarded-For appended (like nginx's $proxy_add_x_forwarded_for), -Proto and -Host set (kept
 * from the client only behind a trusted load balancer), and the body framing the gateway checked.
 * With `upgrade`, Connection: upgrade and the Upgrade field go along (the WebSocket handshake).
 */
export function upstreamRequestHead(head: RequestHead, path: string, client: { address: string; proto: 'http' | 'https' }, trustForwarded: boolean): string {
  const { headers, names, connection } = head;
  let out = `${head.method} ${path} HTTP/1.1\r\n`;
  let xff: string | undefined;
  let xfProto: string | undefined;
  let xfHost: string | undefined;
  for (let i = 0, j = 0; j < names.length; i += 2, j++) {
    const name = names[j];
    if (dropped(name, connection)) continue;
    switch (name) {
      case 'content-length':
        continue; // written once below, as checked
      case 'x-forwarded-for':
        xff = xff === undefined ? headers[i + 1] : `${xff}, ${headers[i + 1]}`;
        continue;
      case 'x-forwarded-proto':
        xfProto ??= headers[i + 1];
        continue;
      case 'x-forwarded-host':
        xfHost ??= headers[i + 1];
        continue;
    }
    out += `${headers[i]}: ${headers[i + 1]}\r\n`;
  }
  out += `x-forwarded-for: ${xff ? `${xff}, ${client.address}` : client.address}\r\n`;
  out += `x-forwarded-proto: ${trustForwarded && xfProto ? xfProto : client.proto}\r\n`;
  const fwdHost = trustForwarded && xfHost ? xfHost : head.host;
  if (fwdHost) out += `x-forwarded-host: ${fwdHost}\r\n`;
  if (head.body === 'chunked') out += 'transfer-encoding: chunked\r\n';
  else if (head.body === 'length' || names.includes('content-length')) out += `content-length: ${head.contentLength}\r\n`;
  if (head.upgrade !== undefined) out += `connection: upgrade\r\nupgrade: ${head.upgrade}\r\n`;
  return out + '\r\n';
}

/**
 * The replica's response fields for the client as "name: value\r\n" lines, without hop-by-hop ones
 * (the gateway adds its own framing and Connection fields). A chunked response loses any
 * Content-Length (Transfer-Encoding wins, RFC 9112 §6.3). With `upgrade` (a 101), Connection and
 * Upgrade are kept.
 */
export function responseFieldLines(head: ResponseHead, upgrade = false): string {
  const { headers, names, connection } = head;
  let out = '';
  for (let i = 0, j = 0; j < names.length; i += 2, j++) {
    const name = names[j];
    const keep = upgrade && (name === 'connection' || name === 'upgrade');
    if (!keep && dropped(name, connection)) continue;
    if (name === 'content-length' && head.body === 'chunked') continue;
    out += `${headers[i]}: ${headers[i + 1]}\r\n`;
  }
  return out;
}
