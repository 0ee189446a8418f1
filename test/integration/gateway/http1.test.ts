/**
 * The gateway's HTTP/1.1 handling on the wire: raw client sockets against a real gateway (Redis routing
 * table) and real loopback replicas, for what a library client would hide: pipelining, HTTP/1.0,
 * chunked bodies both ways, 100-continue, refused heads (smuggling attempts, oversized heads),
 * replicas that answer until close, with a malformed head, or close idle keep-alive connections.
 */
import crypto from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { createLogger, createMetricsRegistry } from '@berth/observability';
import Redis from 'ioredis';
import { Gateway } from '../../../apps/gateway/src/gateway';
import { Upstream, echo, publishRoute, routeEntry, startUpstream, testGatewayOptions, waitFor } from './upstreams';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = crypto.randomBytes(4).toString('hex');
const prefix = `test-h1-${run}:`;

let redis: Redis;
let subscriber: Redis;
let gateway: Gateway;
let port: number;
const upstreams: Upstream[] = [];
const rawServers: net.Server[] = [];
const clients: net.Socket[] = [];

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  subscriber = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  gateway = new Gateway({
    options: testGatewayOptions({
      gatewayId: `gw-${run}`,
      keyPrefix: prefix,
      bullPrefix: `test-h1-bull-${run}`,
      clientHeadersTimeoutMs: 1500,
      clientKeepAliveTimeoutMs: 1500,
    }),
    redis,
    subscriber,
    log: createLogger('gateway-h1-test', 'silent'),
    registry: createMetricsRegistry('gateway-h1-test'),
  });
  port = await gateway.start(0, '127.0.0.1');
});

afterAll(async () => {
  for (const c of clients) c.destroy();
  await gateway?.close();
  await Promise.all(upstreams.map((u) => u.close()));
  await Promise.all(rawServers.map((s) => new Promise((r) => s.close(r))));
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
  await subscriber.quit();
});

/** Routes acme/<service> to a Node replica running `handler`. */
async function route(service: string, handler = echo): Promise<Upstream> {
  const up = await startUpstream(`${service}-1`, handler);
  upstreams.push(up);
  await publishRoute(redis, prefix, routeEntry('acme', service, [up.endpoint]));
  await waitFor('route', () => gateway.routes.get(`acme/${service}`));
  return up;
}

/** Routes acme/<service> to a raw TCP replica that answers each connection with `onData`. */
async function routeRaw(service: string, onData: (socket: net.Socket, data: Buffer) => void): Promise<void> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    s.on('data', (d) => onData(s, d));
  });
  rawServers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const p = (server.address() as net.AddressInfo).port;
  await publishRoute(redis, prefix, routeEntry('acme', service, [{ replicaId: `${service}-raw`, revisionId: 'rev-1', address: '127.0.0.1', port: p }]));
  await waitFor('route', () => gateway.routes.get(`acme/${service}`));
}

/** A raw client connection that collects everything the gateway sends. */
function connect(): { socket: net.Socket; text: () => string; closed: Promise<void>; waitFor: (re: RegExp) => Promise<string> } {
  const socket = net.connect(port, '127.0.0.1');
  clients.push(socket);
  const chunks: Buffer[] = [];
  socket.on('data', (d) => chunks.push(d));
  socket.on('error', () => undefined);
  const closed = new Promise<void>((r) => socket.once('close', () => r()));
  const text = () => Buffer.concat(chunks).toString('latin1');
  return { socket, text, closed, waitFor: (re) => waitFor(`${re}`, () => re.test(text()) && text()) };
}

const statusLines = (text: string) => text.match(/HTTP\/1\.1 \d{3}[^\r]*/g) ?? [];

describe('client side', () => {
  it('answers pipelined requests on one connection in order', async () => {
    await route('pipe', (req, res) => {
      const body = `path=${req.url}`;
      // The first answer is the slowest: order must come from the connection, not from the replica.
      setTimeout(() => res.writeHead(200, { 'content-length': body.length }).end(body), req.url === '/1' ? 100 : 0);
    });
    const c = connect();
    c.socket.write(['/1', '/2', '/3'].map((p) => `GET ${p} HTTP/1.1\r\nHost: pipe.acme.localhost\r\n\r\n`).join(''));
    const text = await c.waitFor(/path=\/3/);
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK', 'HTTP/1.1 200 OK', 'HTTP/1.1 200 OK']);
    expect([...text.matchAll(/path=\/(\d)/g)].map((m) => m[1])).toEqual(['1', '2', '3']);
  });

  it('parses a head that arrives one byte per read', async () => {
    await route('trickle');
    const c = connect();
    c.socket.setNoDelay(true);
    const head = 'GET /trickle HTTP/1.1\r\nHost: trickle.acme.localhost\r\nX-Pad: ' + 'p'.repeat(300) + '\r\n\r\n';
    for (const ch of head) {
      c.socket.write(ch);
      await new Promise((r) => setImmediate(r));
    }
    const text = await c.waitFor(/"url":"\/trickle"/);
    expect(statusLines(text)).toEqual(['HTTP/1.1 200 OK']);
  });

  it('passes a chunked request body through unchanged, trailers included', async () => {
    let seen: { body: string; te: string | undefined; trailers: NodeJS.Dict<string> } | null = null;
    await route('chunkin', (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        seen = { body, te: req.headers['transfer-encoding'], trailers: req.trailers };
        res.writeHead(200, { 'content-length': 2 }).end('ok');
      });
    });
    const c = connect();
    c.socket.write('POST /up HTTP/1.1\r\nHost: chunkin.acme.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    c.socket.write('6;ext=1\r\n world\r\n0\r\nX-Sum: 42\r\n\r\n');
    await c.waitFor(/\r\n\r\nok$/);
    expect(seen).toEqual({ body: 'hello world', te: 'chunked', trailers: { 'x-sum': '42' } });
  });

  it('relays a chunked answer as chunks to HTTP/1.1 and as plain data, then close, to HTTP/1.0', async () => {
    await route('chunkout', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.write('abc');
      setTimeout(() => res.end('def'), 20);
    });
    const c11 = connect();
    c11.socket.write('GET / HTTP/1.1\r\nHost: chunkout.acme.localhost\r\n\r\n');
    const t11 = await c11.waitFor(/0\r\n\r\n$/);
    expect(t11).toMatch(/transfer-encoding: chunked\r\n/i);
    expect(t11.slice(t11.indexOf('\r\n\r\n') + 4)).toBe('3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n');

    const c10 = connect();
    c10.socket.write('GET / HTTP/1.0\r\nHost: chunkout.acme.localhost\r\n\r\n');
    await c10.closed;
    const t10 = c10.text();
    expect(t10).not.toMatch(/transfer-encoding/i);
    expect(t10).toMatch(/connection: close\r\n/);
    expect(t10.slice(t10.indexOf('\r\n\r\n') + 4)).toBe('abcdef');
  });

  it('keeps an HTTP/1.0 connection that asks for keep-alive when the answer has a length', async () => {
    await route('ten');
    const c = connect();
    c.socket.write('GET /a HTTP/1.0\r\nHost: ten.acme.localhost\r\nConnection: keep-alive\r\n\r\n');
    await c.waitFor(/"url":"\/a"/);
    expect(c.text()).toMatch(/connection: keep-alive\r\n/);
    c.socket.write('GET /b HTTP/1.0\r\nHost: ten.acme.localhost\r\nConnection: keep-alive\r\n\r\n');
    await c.waitFor(/"url":"\/b"/);
  });

  it('streams a 32 MiB upload and a 32 MiB answer intact, with backpressure on a slow reader', async () => {
    const size = 32 * 1024 * 1024;
    const payload = crypto.randomBytes(size);
    const digest = (b: Buffer) => crypto.createHash('sha256').update(b).digest('hex');
    await route('big', (req, res) => {
      const hash = crypto.createHash('sha256');
      let n = 0;
      req.on('data', (c: Buffer) => {
        hash.update(c);
        n += c.length;
      });
      req.on('end', () => {
        res.writeHead(200, { 'x-upload-sha256': hash.digest('hex'), 'x-upload-bytes': String(n), 'content-length': size });
        res.end(payload);
      });
    });
    const c = net.connect(port, '127.0.0.1');
    clients.push(c);
    c.write(`POST /big HTTP/1.1\r\nHost: big.acme.localhost\r\nContent-Length: ${size}\r\n\r\n`);
    c.write(payload);
    // Read slowly at first: the gateway must pause the replica rather than buffer the whole answer.
    c.pause();
    await new Promise((r) => setTimeout(r, 300));
    const chunks: Buffer[] = [];
    c.on('data', (d: Buffer) => chunks.push(d));
    c.resume();
    const all = await waitFor('the whole answer', () => {
      const b = Buffer.concat(chunks);
      const at = b.indexOf('\r\n\r\n');
      return at >= 0 && b.length - at - 4 >= size ? b : null;
    }, 30_000);
    const at = all.indexOf('\r\n\r\n');
    const head = all.subarray(0, at).toString('latin1');
    expect(head).toMatch(new RegExp(`x-upload-sha256: ${digest(payload)}`));
    expect(head).toMatch(new RegExp(`x-upload-bytes: ${size}`));
    expect(digest(all.subarray(at + 4))).toBe(digest(payload));
  });

  it('answers Expect: 100-continue before the body is sent', async () => {
    await route('cont');
    const c = connect();
    c.socket.write('PUT /c HTTP/1.1\r\nHost: cont.acme.localhost\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n');
    await c.waitFor(/^HTTP\/1\.1 100 Continue\r\n\r\n/);
    c.socket.write('hello');
    const text = await c.waitFor(/"bodyBytes":5/);
    expect(statusLines(text)).toEqual(['HTTP/1.1 100 Continue', 'HTTP/1.1 200 OK']);
  });

  it('answers HEAD with the headers alone and keeps the connection', async () => {
    await route('head', (_req, res) => res.writeHead(200, { 'content-length': 11, 'content-type': 'text/plain' }).end('hello world'));
    const c = connect();
    c.socket.write('HEAD / HTTP/1.1\r\nHost: head.acme.localhost\r\n\r\nGET / HTTP/1.1\r\nHost: head.acme.localhost\r\n\r\n');
    const text = await c.waitFor(/hello world$/);
    expect(statusLines(text)).toHaveLength(2);
    expect(text.match(/hello world/g)).toHaveLength(1);
  });

  it.each([
    ['Content-Length with Transfer-Encoding (request smuggling)', 'POST / HTTP/1.1\r\nHost: smuggle.acme.localhost\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: smuggle.acme.localhost\r\n\r\n', 400, /both Transfer-Encoding and Content-Length/],
    ['two different Content-Lengths', 'POST / HTTP/1.1\r\nHost: smuggle.acme.localhost\r\nContent-Length: 4\r\nContent-Length: 40\r\n\r\nabcd', 400, /conflicting Content-Length/],
    ['a space before the colon', 'GET / HTTP/1.1\r\nHost: smuggle.acme.localhost\r\nTransfer-Encoding : chunked\r\n\r\n', 400, /invalid header field name/],
    ['HTTP/2 in an HTTP/1 request line', 'GET / HTTP/2.0\r\nHost: smuggle.acme.localhost\r\n\r\n', 505, /not supported/],
    ['a head over 64 KiB', `GET / HTTP/1.1\r\nHost: smuggle.acme.localhost\r\nX-Big: ${'a'.repeat(70 * 1024)}\r\n\r\n`, 431, /exceeds/],
  ])('refuses %s with a JSON error, closes the connection, and the replica sees nothing', async (_what, bytes, status, message) => {
    const up = upstreams.find((u) => u.id === 'smuggle-1') ?? (await route('smuggle'));
    const hits = up.hits;
    const c = connect();
    c.socket.write(bytes);
    await c.closed;
    const text = c.text();
    expect(statusLines(text)).toEqual([`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}`]);
    expect(text).toMatch(/connection: close\r\n/);
    const body = JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as { error: { code: string; message: string } };
    expect(body.error.message).toMatch(message);
    expect(up.hits).toBe(hits);
  });

  it('answers 400 to a malformed chunk in a streamed body and cuts the replica off before the body ends', async () => {
    let outcome = '';
    await route('badchunk', (req, res) => {
      req.on('data', () => undefined);
      req.on('end', () => {
        outcome = 'complete';
        res.end('should not happen');
      });
      req.on('close', () => (outcome ||= 'cut'));
    });
    const c = connect();
    c.socket.write('POST / HTTP/1.1\r\nHost: badchunk.acme.localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
    await new Promise((r) => setTimeout(r, 50));
    c.socket.write('zz\r\n0\r\n\r\n');
    await c.closed;
    expect(statusLines(c.text())).toEqual(['HTTP/1.1 400 Bad Request']);
    expect(c.text()).toMatch(/malformed chunked request body/);
    await waitFor('the replica to see the cut', () => outcome);
    expect(outcome).toBe('cut');
  });

  it('answers 408 to a client that never finishes its head, and closes idle keep-alive connections', async () => {
    await route('slow');
    const slow = connect();
    slow.socket.write('GET / HTTP/1.1\r\nHost: slow.acme.localhost\r\nX-Slow: ');
    const idle = connect();
    idle.socket.write('GET / HTTP/1.1\r\nHost: slow.acme.localhost\r\n\r\n');
    await idle.waitFor(/"replica":"slow-1"/);
    await Promise.all([slow.closed, idle.closed]); // both within a few seconds (timeouts 1.5 s)
    expect(statusLines(slow.text())).toEqual(['HTTP/1.1 408 Request Timeout']);
    expect(statusLines(idle.text())).toEqual(['HTTP/1.1 200 OK']);
  });

  it('refuses CONNECT with 405', async () => {
    const c = connect();
    c.socket.write('CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n');
    expect(statusLines(await c.waitFor(/\r\n\r\n\{.*\}$/))).toEqual(['HTTP/1.1 405 Method Not Allowed']);
  });
});

describe('replica side', () => {
  it('relays an answer that runs until the replica closes, then closes the client connection', async () => {
    await routeRaw('eof', (s) => s.end('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end'));
    const c = connect();
    c.socket.write('GET / HTTP/1.1\r\nHost: eof.acme.localhost\r\n\r\n');
    await c.closed;
    expect(c.text()).toMatch(/^HTTP\/1\.1 200 OK\r\n[\s\S]*connection: close\r\n\r\nuntil the end$/);
  });

  it('answers 502 naming the problem when the replica sends a malformed head', async () => {
    await routeRaw('garbage', (s) => s.end('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello'));
    const c = connect();
    c.socket.write('POST / HTTP/1.1\r\nHost: garbage.acme.localhost\r\nContent-Length: 0\r\n\r\n');
    const text = await c.waitFor(/\}$/);
    expect(statusLines(text)).toEqual(['HTTP/1.1 502 Bad Gateway']);
    expect(text).toMatch(/UPSTREAM_BAD_RESPONSE/);
  });

  it('answers 504 when the replica sends no response head in time, and drops its connection', async () => {
    let replicaSocketClosed = false;
    await routeRaw('mute', (s) => s.once('close', () => (replicaSocketClosed = true))); // reads, never answers
    const quickSubscriber = redis.duplicate();
    const quick = new Gateway({
      options: { ...gateway.opts, gatewayId: `gw-quick-${run}`, upstreamHeadersTimeoutMs: 500 },
      redis,
      subscriber: quickSubscriber,
      log: createLogger('gateway-h1-quick', 'silent'),
      registry: createMetricsRegistry('gateway-h1-quick'),
    });
    const quickPort = await quick.start(0, '127.0.0.1');
    try {
      await waitFor('route', () => quick.routes.get('acme/mute'));
      const c = net.connect(quickPort, '127.0.0.1');
      clients.push(c);
      const chunks: Buffer[] = [];
      c.on('data', (d: Buffer) => chunks.push(d));
      c.write('GET / HTTP/1.1\r\nHost: mute.acme.localhost\r\n\r\n');
      const text = await waitFor('504', () => /\}$/.test(Buffer.concat(chunks).toString()) && Buffer.concat(chunks).toString(), 10_000);
      expect(statusLines(text)).toEqual(['HTTP/1.1 504 Gateway Timeout']);
      expect(text).toMatch(/UPSTREAM_TIMEOUT/);
      await waitFor('the replica connection to be dropped', () => replicaSocketClosed);
    } finally {
      await quick.close();
      await quickSubscriber.quit();
    }
  });

  it('relays 1xx informational answers before the final one', async () => {
    await routeRaw('hints', (s) => s.write('HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok'));
    const c = connect();
    c.socket.write('GET / HTTP/1.1\r\nHost: hints.acme.localhost\r\n\r\n');
    const text = await c.waitFor(/\r\n\r\nok$/);
    expect(statusLines(text)).toEqual(['HTTP/1.1 103 Early Hints', 'HTTP/1.1 200 OK']);
    expect(text).toMatch(/Link: <\/a\.css>; rel=preload\r\n/);
  });

  it('reuses keep-alive connections to a replica, and copes with a replica that closes idle ones', async () => {
    const sockets = new Set<net.Socket>();
    const up = await route('idle');
    up.server.on('connection', (s) => sockets.add(s));
    const c = connect();
    for (let i = 0; i < 3; i++) {
      c.socket.write(`GET /r${i} HTTP/1.1\r\nHost: idle.acme.localhost\r\n\r\n`);
      await c.waitFor(new RegExp(`"url":"/r${i}"`));
    }
    expect(sockets.size).toBe(1); // one upstream connection carried all three
    for (const s of sockets) s.end(); // the replica closes its idle keep-alive connection
    await new Promise((r) => setTimeout(r, 100));
    c.socket.write('GET /after HTTP/1.1\r\nHost: idle.acme.localhost\r\n\r\n');
    const text = await c.waitFor(/"url":"\/after"/);
    expect(statusLines(text).every((l) => l === 'HTTP/1.1 200 OK')).toBe(true);
    expect(sockets.size).toBe(2);
  });
});
