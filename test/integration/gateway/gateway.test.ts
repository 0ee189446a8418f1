import crypto from 'node:crypto';
import http from 'node:http';
import { QueueName, WakeJob } from '@berth/contracts';
import { createLogger, createMetricsRegistry } from '@berth/observability';
import { Queue, Worker } from 'bullmq';
import Redis from 'ioredis';
import { Gateway } from '../../../apps/gateway/src/gateway';
import { Upstream, closeClientAgent, echo, publishRoute, removeRoute, request, routeEntry, sleep, startUpstream, testGatewayOptions, waitFor } from './upstreams';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const run = crypto.randomBytes(4).toString('hex');
const prefix = `test-gw-${run}:`;
const bullPrefix = `test-gw-bull-${run}`;
const HOLD_MS = 1500;

let redis: Redis;
let subscriber: Redis;
let gateway: Gateway;
let port: number;
const registry = createMetricsRegistry('gateway-test');
const upstreams: Upstream[] = [];
const duplicates: Redis[] = [];
const dup = () => {
  const d = redis.duplicate();
  duplicates.push(d);
  return d;
};
const host = (service: string, project = 'acme') => `${service}.${project}.localhost`;

async function up(id: string, handler = echo) {
  const u = await startUpstream(id, handler);
  upstreams.push(u);
  return u;
}

beforeAll(async () => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  subscriber = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
  gateway = new Gateway({
    options: testGatewayOptions({
      gatewayId: `gw-${run}`,
      keyPrefix: prefix,
      bullPrefix,
      holdTimeoutMs: HOLD_MS,
      retryAfterS: 7,
      concurrencyReportMs: 200,
    }),
    redis,
    subscriber,
    log: createLogger('gateway-test', 'silent'),
    registry,
  });
  port = await gateway.start(0, '127.0.0.1');
});

afterAll(async () => {
  await gateway?.close();
  await Promise.all(upstreams.map((u) => u.close()));
  const keys = await redis.keys(`${prefix}*`);
  const bull = await redis.keys(`${bullPrefix}:*`);
  if (keys.length + bull.length) await redis.del(...keys, ...bull);
  await Promise.all(duplicates.map((d) => d.quit()));
  await redis.quit();
  await subscriber.quit();
  closeClientAgent();
});

describe('routing', () => {
  it('routes <service>.<project>.<base-domain> to a READY replica, ignoring the port and case', async () => {
    const a = await up('r-route-a');
    await publishRoute(redis, prefix, routeEntry('acme', 'web', [a.endpoint]));
    await waitFor('route', () => gateway.routes.get('acme/web'));
    const r = await request(port, 'Web.ACME.localhost:8000', { path: '/x?y=1' });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ replica: 'r-route-a', url: '/x?y=1' });
  });

  it('answers 404 with a JSON body naming the host for an unknown service or a host outside the base domain', async () => {
    const r = await request(port, host('nope'));
    expect(r.status).toBe(404);
    expect(JSON.parse(r.body).error).toMatchObject({ code: 'SERVICE_NOT_FOUND', message: expect.stringContaining('"nope"') });
    const r2 = await request(port, 'example.com');
    expect(r2.status).toBe(404);
    expect(JSON.parse(r2.body).error).toMatchObject({ code: 'HOST_NOT_ROUTED', message: expect.stringContaining('example.com') });
  });

  it('answers 503 with Retry-After when the service wants replicas but none is ready or starting', async () => {
    await publishRoute(redis, prefix, routeEntry('acme', 'down', [], { minScale: 1, desiredReplicas: 1, startingReplicas: 0 }));
    await waitFor('route', () => gateway.routes.get('acme/down'));
    const r = await request(port, host('down'));
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('7');
    // NO_READY_REPLICAS at once, not SERVICE_STARTING after holding the request.
    expect(JSON.parse(r.body).error.code).toBe('NO_READY_REPLICAS');
  });

  it('applies route changes within a second (pub/sub), including removal', async () => {
    const a = await up('r-upd-a');
    const b = await up('r-upd-b');
    await publishRoute(redis, prefix, routeEntry('acme', 'upd', [a.endpoint]));
    await waitFor('route a', async () => JSON.parse((await request(port, host('upd'))).body).replica === 'r-upd-a');
    // The safety-net reload runs every 10 s here: seeing the change well before that is the pub/sub path.
    // (How fast it is, is measured by bench/gateway, not asserted.)
    await publishRoute(redis, prefix, routeEntry('acme', 'upd', [b.endpoint]));
    await waitFor('route b', async () => JSON.parse((await request(port, host('upd'))).body).replica === 'r-upd-b', 3000, 10);
    await removeRoute(redis, prefix, 'acme', 'upd');
    await waitFor('removal', async () => (await request(port, host('upd'))).status === 404, 3000, 10);
  });
});

describe('proxying', () => {
  it('streams request and response bodies without buffering (each chunk round-trips before the next is sent)', async () => {
    const a = await up('r-stream', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      req.pipe(res);
    });
    await publishRoute(redis, prefix, routeEntry('acme', 'stream', [a.endpoint]));
    await waitFor('route', () => gateway.routes.get('acme/stream'));
    const received: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/echo', headers: { host: host('stream'), 'transfer-encoding': 'chunked' } });
      let i = 0;
      const next = () => {
        if (i === 5) return req.end();
        req.write(`chunk-${i++};`);
      };
      req.on('response', (res) => {
        expect(res.statusCode).toBe(200);
        res.on('data', (c: Buffer) => {
          received.push(c.toString());
          next(); // only after our previous chunk came back through both directions
        });
        res.on('end', () => resolve());
      });
      req.on('error', reject);
      req.flushHeaders();
      next();
    });
    expect(received.join('')).toBe('chunk-0;chunk-1;chunk-2;chunk-3;chunk-4;');
  });

  it('passes WebSocket upgrades through (handshake, then bytes both ways)', async () => {
    const a = await up('r-ws');
    await publishRoute(redis, prefix, routeEntry('acme', 'ws', [a.endpoint]));
    await waitFor('route', () => gateway.routes.get('acme/ws'));
    const key = crypto.randomBytes(16).toString('base64');
    const { res, socket } = await new Promise<{ res: http.IncomingMessage; socket: import('node:net').Socket }>((resolve, reject) => {
      const req = http.request({
        host: '127.0.0.1',
        port,
        path: '/socket',
        headers: { host: host('ws'), connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': key, 'sec-websocket-version': '13' },
      });
      req.on('upgrade', (res, socket) => resolve({ res, socket }));
      req.on('response', (r) => reject(new Error(`no upgrade: ${r.statusCode}`)));
      req.on('error', reject);
      req.end();
    });
    try {
      expect(res.statusCode).toBe(101);
      expect(res.headers['sec-websocket-accept']).toBe(crypto.createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64'));
      expect(res.headers['x-replica']).toBe('r-ws');
      const echoed = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (c: Buffer) => {
          text += c.toString();
          if (text.length >= 10) resolve(text);
        });
      });
      socket.write('hello-ws-1');
      expect(await echoed).toBe('hello-ws-1');
    } finally {
      socket.destroy();
    }
  });

  it('sets X-Forwarded-* and strips hop-by-hop headers both ways', async () => {
    const a = await up('r-hdr', (req, res) => {
      const body = JSON.stringify(req.headers);
      res.writeHead(200, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        connection: 'X-Up-Hop',
        'x-up-hop': 'secret',
        'keep-alive': 'timeout=77',
        'x-up-kept': 'yes',
      });
      res.end(body);
    });
    await publishRoute(redis, prefix, routeEntry('acme', 'hdr', [a.endpoint]));
    await waitFor('route', () => gateway.routes.get('acme/hdr'));
    const r = await request(port, 'hdr.acme.localhost:8000', {
      headers: {
        connection: 'keep-alive, X-Client-Hop',
        'x-client-hop': 'drop-me',
        'keep-alive': 'timeout=9',
        te: 'trailers',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        'x-forwarded-for': '10.9.8.7',
        'x-forwarded-proto': 'https',
        'x-kept': 'yes',
      },
    });
    expect(r.status).toBe(200);
    const seen = JSON.parse(r.body) as Record<string, string>;
    expect(seen['x-forwarded-for']).toBe('10.9.8.7, 127.0.0.1');
    expect(seen['x-forwarded-proto']).toBe('http'); // the client's claim is not trusted by default
    expect(seen['x-forwarded-host']).toBe('hdr.acme.localhost:8000');
    expect(seen.host).toBe('hdr.acme.localhost:8000');
    expect(seen['x-kept']).toBe('yes');
    for (const h of ['x-client-hop', 'te', 'proxy-authorization', 'upgrade', 'transfer-encoding']) expect(seen[h]).toBeUndefined();
    expect(seen['keep-alive']).toBeUndefined();
    expect(r.headers['x-up-hop']).toBeUndefined();
    expect(r.headers['x-up-kept']).toBe('yes');
    expect(r.headers['keep-alive']).not.toBe('timeout=77'); // the gateway's own keep-alive, not the upstream's
  });

  it('retries idempotent requests on another replica when one is killed mid-load: zero failed GETs', async () => {
    const slowish = (req: http.IncomingMessage, res: http.ServerResponse, u: Upstream) => setTimeout(() => echo(req, res, u), 5);
    const a = await up('r-kill-a', slowish);
    const b = await up('r-kill-b', slowish);
    const c = await up('r-kill-c', slowish);
    await publishRoute(redis, prefix, routeEntry('acme', 'kill', [a.endpoint, b.endpoint, c.endpoint]));
    await waitFor('route', () => gateway.routes.get('acme/kill'));
    const retriesBefore = (await gateway.metrics.retries.get()).values.reduce((s, v) => s + v.value, 0);
    const statuses: number[] = [];
    let sent = 0;
    const total = 600;
    const worker = async () => {
      while (sent < total) {
        sent++;
        statuses.push((await request(port, host('kill'), { path: `/item/${sent}` })).status);
      }
    };
    const load = Promise.all(Array.from({ length: 12 }, worker));
    await waitFor('load running', () => b.hits > 30);
    await b.close(); // refuses new connections and resets the in-flight ones
    await load;
    expect(statuses).toHaveLength(total);
    expect(statuses.filter((s) => s !== 200)).toEqual([]);
    const retriesAfter = (await gateway.metrics.retries.get()).values.reduce((s, v) => s + v.value, 0);
    expect(retriesAfter).toBeGreaterThan(retriesBefore);
    expect(a.hits + c.hits).toBeGreaterThan(0);
  });

  it('retries a GET whose replica dies after the headers, mid-body: the client never sees the cut answer', async () => {
    // Headers and half of a 10-byte body, then the connection is reset (a replica SIGKILLed mid-write).
    // One replica's connection is reset, the other's closed cleanly (what a killed process leaves).
    const cut = (how: 'destroy' | 'end') => (_req: http.IncomingMessage, res: http.ServerResponse) => {
      // busybox httpd (the fixture) answers with Connection: close, then a clean close reads as a short body.
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '10', ...(how === 'end' ? { connection: 'close' } : {}) });
      res.write('half!', () => setTimeout(() => (how === 'end' ? res.socket?.end() : res.socket?.destroy()), 20));
    };
    const a = await up('r-cut-a', cut('destroy'));
    const b = await up('r-cut-b', cut('end'));
    const whole = await up('r-cut-whole');
    await publishRoute(redis, prefix, routeEntry('acme', 'cut', [a.endpoint, b.endpoint, whole.endpoint]));
    await waitFor('route', () => gateway.routes.get('acme/cut'));
    const replies = await Promise.all(Array.from({ length: 6 }, (_, i) => request(port, host('cut'), { path: `/cut/${i}` })));
    for (const r of replies) {
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ replica: 'r-cut-whole', url: expect.stringMatching(/^\/cut\/\d$/) });
    }
    expect(a.hits + b.hits).toBeGreaterThan(0);
  });

  it('retries a PUT with a small body on another replica when the first refuses the connection', async () => {
    const live = await up('r-put-live');
    const dead = await up('r-put-dead');
    await dead.close(); // its port now refuses connections
    await publishRoute(redis, prefix, routeEntry('acme', 'put', [dead.endpoint, live.endpoint]));
    await waitFor('route', () => gateway.routes.get('acme/put'));
    const replies = await Promise.all(Array.from({ length: 10 }, () => request(port, host('put'), { method: 'PUT', body: 'hello', headers: { 'content-type': 'text/plain' } })));
    for (const r of replies) {
      expect(r.status).toBe(200);
      expect(JSON.parse(r.body)).toMatchObject({ replica: 'r-put-live', method: 'PUT', bodyBytes: 5 });
    }
    const retried = (await gateway.metrics.retries.get()).values.find((v) => v.labels.service === 'acme/put');
    expect(retried?.value).toBeGreaterThanOrEqual(1);
  });

  it('does not retry a POST: a reset before the answer is a 502', async () => {
    const a = await up('r-post', (req) => req.socket.destroy());
    const b = await up('r-post-b', (req) => req.socket.destroy());
    await publishRoute(redis, prefix, routeEntry('acme', 'post', [a.endpoint, b.endpoint]));
    await waitFor('route', () => gateway.routes.get('acme/post'));
    const r = await request(port, host('post'), { method: 'POST', body: 'x' });
    expect(r.status).toBe(502);
    expect(a.hits + b.hits).toBe(1);
  });

  it('balances by least outstanding requests: a slow replica does not collect a queue', async () => {
    const slow = await up('r-lor-slow', (req, res, u) => setTimeout(() => echo(req, res, u), 400));
    const fast = await up('r-lor-fast', (req, res, u) => setTimeout(() => echo(req, res, u), 5));
    await publishRoute(redis, prefix, routeEntry('acme', 'lor', [slow.endpoint, fast.endpoint]));
    await waitFor('route', () => gateway.routes.get('acme/lor'));
    let sent = 0;
    const total = 200;
    const worker = async () => {
      while (sent < total) {
        sent++;
        expect((await request(port, host('lor'))).status).toBe(200);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    // Round robin would send ~100 to the slow replica; least-outstanding sends it only a handful.
    expect(slow.hits).toBeLessThan(total * 0.15);
    expect(fast.hits + slow.hits).toBe(total);
  });
});

describe('holding and scale from zero', () => {
  it('holds 20 concurrent first requests of a scaled-to-zero service, sends ONE wake, forwards all when a replica is ready', async () => {
    const replica = await up('r-cold');
    const entry = routeEntry('acme', 'cold', [], { desiredReplicas: 0 });
    await publishRoute(redis, prefix, entry);
    await waitFor('route', () => gateway.routes.get('acme/cold'));
    const wakes: WakeJob[] = [];
    // Stands in for the scheduler: on a wake, the replica becomes READY 300 ms later.
    const worker = new Worker<WakeJob>(
      QueueName.Autoscale,
      async (job) => {
        wakes.push(job.data);
        await sleep(300);
        await publishRoute(redis, prefix, { ...entry, desiredReplicas: 1, endpoints: [replica.endpoint] });
      },
      { connection: dup(), prefix: bullPrefix },
    );
    try {
      const t0 = Date.now();
      const replies = await Promise.all(Array.from({ length: 20 }, (_, i) => request(port, host('cold'), { path: `/first/${i}` })));
      expect(replies.map((r) => r.status)).toEqual(Array(20).fill(200));
      expect(Date.now() - t0).toBeGreaterThanOrEqual(300);
      await sleep(200);
      expect(wakes).toHaveLength(1);
      expect(wakes[0]).toMatchObject({ kind: 'wake', serviceId: entry.serviceId });
      const cold = (await gateway.metrics.coldStart.get()).values.find((v) => v.metricName === 'berth_gateway_cold_start_seconds_count' && v.labels.service === 'acme/cold');
      expect(cold?.value).toBe(1);
      const sum = (await gateway.metrics.coldStart.get()).values.find((v) => v.metricName === 'berth_gateway_cold_start_seconds_sum' && v.labels.service === 'acme/cold');
      expect(sum!.value).toBeGreaterThanOrEqual(0.29);
    } finally {
      await worker.close();
    }
  });

  it('answers 503 with Retry-After and a "starting" body when the hold times out', async () => {
    await publishRoute(redis, prefix, routeEntry('acme', 'never', [], { desiredReplicas: 0 }));
    await waitFor('route', () => gateway.routes.get('acme/never'));
    const t0 = Date.now();
    const r = await request(port, host('never'));
    const waited = Date.now() - t0;
    expect(r.status).toBe(503);
    expect(r.headers['retry-after']).toBe('7');
    expect(JSON.parse(r.body).error).toMatchObject({ code: 'SERVICE_STARTING', message: expect.stringContaining('is starting') });
    expect(waited).toBeGreaterThanOrEqual(HOLD_MS - 50); // it was held for the whole limit
    const queue = new Queue(QueueName.Autoscale, { connection: dup(), prefix: bullPrefix });
    try {
      expect(await queue.getJob('wake.svc-acme-never')).toBeDefined();
    } finally {
      await queue.close();
    }
  });

  it('holds (without a wake) while replicas are starting, then forwards', async () => {
    const replica = await up('r-starting');
    const entry = routeEntry('acme', 'starting', [], { desiredReplicas: 1, minScale: 1, startingReplicas: 1 });
    await publishRoute(redis, prefix, entry);
    await waitFor('route', () => gateway.routes.get('acme/starting'));
    const pending = request(port, host('starting'));
    await sleep(200);
    await publishRoute(redis, prefix, { ...entry, endpoints: [replica.endpoint], startingReplicas: 0 });
    const r = await pending;
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body).replica).toBe('r-starting');
  });
});

describe('concurrency metrics', () => {
  it('publishes per-service average in-flight to Redis and exposes in-flight gauges', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const a = await up('r-conc', (req, res, u) => void gate.then(() => echo(req, res, u)));
    const entry = routeEntry('acme', 'conc', [a.endpoint]);
    await publishRoute(redis, prefix, entry);
    await waitFor('route', () => gateway.routes.get('acme/conc'));
    const inflight = Array.from({ length: 5 }, () => request(port, host('conc')));
    try {
      await waitFor('5 in flight', () => a.hits === 5);
      const sample = await waitFor('concurrency sample', async () => {
        const v = Number(await redis.hget(`${prefix}berth:concurrency:gw-${run}`, entry.serviceId));
        return v >= 4.5 ? v : null;
      });
      expect(sample).toBeLessThanOrEqual(5);
      expect(await redis.zscore(`${prefix}berth:concurrency:gateways`, `gw-${run}`)).not.toBeNull();
      expect(await redis.pttl(`${prefix}berth:concurrency:gw-${run}`)).toBeGreaterThan(0);
      const text = await registry.metrics();
      expect(text).toMatch(/berth_gateway_inflight_requests\{service="acme\/conc",app="gateway-test"\} 5/);
      expect(text).toMatch(/berth_gateway_replica_inflight_requests\{service="acme\/conc",replica="r-conc",app="gateway-test"\} 5/);
    } finally {
      release();
      await Promise.all(inflight);
    }
    const requests = (await gateway.metrics.requests.get()).values.find((v) => v.labels.service === 'acme/conc' && v.labels.code === '200');
    expect(requests?.value).toBe(5);
    const duration = (await gateway.metrics.duration.get()).values.find(
      (v) => v.metricName === 'berth_gateway_request_duration_seconds_count' && v.labels.service === 'acme/conc',
    );
    expect(duration?.value).toBe(5);
  });

  it('is ready only once the routing table is loaded and Redis answers', async () => {
    for (const c of gateway.readinessChecks()) await expect(c.check()).resolves.toBeUndefined();
  });
});

describe('hosts the gateway does not know yet', () => {
  let gw3: Gateway;
  let port3: number;
  const reg3 = createMetricsRegistry('gateway-test-3');
  const gauge = async (name: string, labels: Record<string, string> = {}) => {
    const m = await reg3.getSingleMetric(name)!.get();
    return m.values.find((v) => Object.entries(labels).every(([k, val]) => v.labels[k] === val))?.value ?? 0;
  };

  beforeAll(async () => {
    gw3 = new Gateway({
      options: testGatewayOptions({
        gatewayId: `gw3-${run}`,
        keyPrefix: prefix,
        bullPrefix,
        unknownHostHoldMs: 1500,
        unknownHostMaxHeld: 2,
        unknownHostNegativeMs: 60_000,
      }),
      redis,
      subscriber: dup(),
      log: createLogger('gateway-test', 'silent'),
      registry: reg3,
    });
    port3 = await gw3.start(0, '127.0.0.1');
  });
  afterAll(() => gw3?.close());

  it('holds a request whose route is published while it waits, then routes it', async () => {
    const a = await up('r-late');
    const reply = request(port3, host('late'));
    await waitFor('request held', async () => (await gauge('berth_gateway_unknown_host_held_requests')) === 1);
    await publishRoute(redis, prefix, routeEntry('acme', 'late', [a.endpoint]));
    const r = await reply;
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toMatchObject({ replica: 'r-late' });
    expect(await gauge('berth_gateway_unknown_host_requests_total', { outcome: 'found' })).toBe(1);
  });

  it('finds an entry written to Redis whose change notice never came', async () => {
    const a = await up('r-silent');
    await redis.hset(`${prefix}berth:routes`, 'acme/silent', JSON.stringify(routeEntry('acme', 'silent', [a.endpoint])));
    const r = await request(port3, host('silent'));
    expect(r.status).toBe(200);
    expect(gw3.routes.get('acme/silent')).toBeDefined();
  });

  it('holds at most unknownHostMaxHeld requests: past that, 404 at once; a host that ended a hold is not held again', async () => {
    const held = [request(port3, host('made-up-1')), request(port3, host('made-up-2'))];
    await waitFor('two held', async () => (await gauge('berth_gateway_unknown_host_held_requests')) === 2);
    const third = await request(port3, host('made-up-3'));
    expect(third.status).toBe(404);
    expect(JSON.parse(third.body).error.code).toBe('SERVICE_NOT_FOUND');
    // Answered while the other two were still held.
    expect(await gauge('berth_gateway_unknown_host_held_requests')).toBe(2);
    expect(await gauge('berth_gateway_unknown_host_requests_total', { outcome: 'rejected' })).toBe(1);
    expect((await Promise.all(held)).map((r) => r.status)).toEqual([404, 404]);
    expect(await gauge('berth_gateway_unknown_host_requests_total', { outcome: 'not_found' })).toBe(2);
    // Negative cache: made-up-1 just ended a hold; asked again, it is answered after one read, not held.
    expect((await request(port3, host('made-up-1'))).status).toBe(404);
    expect(await gauge('berth_gateway_unknown_host_requests_total', { outcome: 'negative' })).toBe(1);
  });
});

describe('shutdown', () => {
  it('lets in-flight requests finish (drain) and refuses new connections', async () => {
    const sub = dup();
    const gw2 = new Gateway({
      options: {
        baseDomain: 'localhost',
        gatewayId: `gw2-${run}`,
        keyPrefix: prefix,
        bullPrefix,
        holdTimeoutMs: HOLD_MS,
        retryAfterS: 7,
        maxAttempts: 3,
        retryBodyLimitBytes: 1024,
        routesRefreshMs: 0,
        concurrencyReportMs: 1000,
        upstreamHeadersTimeoutMs: 30_000,
        upstreamConnectTimeoutMs: 1000,
        trustForwarded: false,
      },
      redis,
      subscriber: sub,
      log: createLogger('gateway-test', 'silent'),
      registry: createMetricsRegistry('gateway-test-2'),
    });
    const port2 = await gw2.start(0, '127.0.0.1');
    const a = await up('r-drain', (req, res, u) => setTimeout(() => echo(req, res, u), 400));
    await publishRoute(redis, prefix, routeEntry('acme', 'drain', [a.endpoint]));
    await waitFor('route', () => gw2.routes.get('acme/drain'));
    const inflight = request(port2, host('drain'), { headers: { connection: 'close' } });
    await waitFor('request reached the upstream', () => a.hits === 1);
    const closing = gw2.close(5000);
    await sleep(50);
    await expect(request(port2, host('drain'), { headers: { connection: 'close' } })).rejects.toThrow(/ECONNREFUSED/);
    expect((await inflight).status).toBe(200);
    await closing;
  });
});
