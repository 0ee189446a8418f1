import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RouteEndpoint, RouteEntry } from '@berth/contracts';
import { routeKey } from '@berth/contracts';
import type Redis from 'ioredis';
import type { GatewayOptions } from '../../../apps/gateway/src/gateway';

/** A loopback HTTP server standing in for one replica. */
export interface Upstream {
  id: string;
  port: number;
  server: http.Server;
  hits: number;
  endpoint: RouteEndpoint;
  close(): Promise<void>;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse, up: Upstream) => void;

/** Echo: answers JSON with the replica id, method, url, headers and body length. */
export const echo: Handler = (req, res, up) => {
  let size = 0;
  req.on('data', (c: Buffer) => (size += c.length));
  req.on('end', () => {
    const body = JSON.stringify({ replica: up.id, method: req.method, url: req.url, headers: req.headers, bodyBytes: size });
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  });
};

export async function startUpstream(id: string, handler: Handler = echo): Promise<Upstream> {
  const up = { id, hits: 0 } as Upstream;
  up.server = http.createServer((req, res) => {
    up.hits++;
    handler(req, res, up);
  });
  // Minimal WebSocket handshake; after it the server echoes raw bytes back (enough to prove a tunnel).
  up.server.on('upgrade', (req, socket, head) => {
    const key = req.headers['sec-websocket-key'];
    if (req.headers.upgrade?.toLowerCase() !== 'websocket' || typeof key !== 'string') {
      socket.end('HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const accept = crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\nX-Replica: ${id}\r\n\r\n`);
    if (head.length) socket.write(head);
    socket.pipe(socket);
  });
  await new Promise<void>((r) => up.server.listen(0, '127.0.0.1', r));
  up.port = (up.server.address() as AddressInfo).port;
  up.endpoint = { replicaId: id, revisionId: 'rev-1', address: '127.0.0.1', port: up.port };
  up.close = () =>
    new Promise<void>((r) => {
      up.server.close(() => r());
      up.server.closeAllConnections();
    });
  return up;
}

export function routeEntry(project: string, service: string, endpoints: RouteEndpoint[], over: Partial<RouteEntry> = {}): RouteEntry {
  return {
    serviceId: `svc-${project}-${service}`,
    project,
    service,
    minScale: 0,
    maxScale: 10,
    targetConcurrency: 10,
    desiredReplicas: endpoints.length,
    endpoints,
    updatedAt: new Date().toISOString(),
    ...over,
  };
}

/** Writes a route entry the way the scheduler does: HSET, then PUBLISH the field. */
export async function publishRoute(redis: Redis, prefix: string, entry: RouteEntry): Promise<void> {
  const field = routeKey(entry.project, entry.service);
  await redis.hset(`${prefix}berth:routes`, field, JSON.stringify(entry));
  await redis.publish(`${prefix}berth:routes:changed`, field);
}

export async function removeRoute(redis: Redis, prefix: string, project: string, service: string): Promise<void> {
  const field = routeKey(project, service);
  await redis.hdel(`${prefix}berth:routes`, field);
  await redis.publish(`${prefix}berth:routes:changed`, field);
}

export interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
export const closeClientAgent = () => agent.destroy();

/** A request to the gateway with an explicit Host header. */
export function request(port: number, host: string, opts: { method?: string; path?: string; headers?: http.OutgoingHttpHeaders; body?: string | Buffer } = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, method: opts.method ?? 'GET', path: opts.path ?? '/', headers: { host, ...opts.headers }, agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(opts.body);
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | null | false> | T | undefined | null | false, timeoutMs = 5000, everyMs = 20): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** Options for a gateway under test on loopback: shared defaults, and the ones a test cares about. */
export function testGatewayOptions(over: Pick<GatewayOptions, 'gatewayId' | 'keyPrefix' | 'bullPrefix'> & Partial<GatewayOptions>): GatewayOptions {
  return {
    baseDomain: 'localhost',
    holdTimeoutMs: 1000,
    retryAfterS: 1,
    maxAttempts: 3,
    retryBodyLimitBytes: 64 * 1024,
    routesRefreshMs: 10_000,
    concurrencyReportMs: 1000,
    upstreamHeadersTimeoutMs: 30_000,
    upstreamConnectTimeoutMs: 1000,
    trustForwarded: false,
    ...over,
  };
}
