import crypto from 'node:crypto';
import Redis from 'ioredis';
import { metricsPoint, minuteOf, RedisKey, SERVICE_METRICS_RETENTION_MINUTES } from '@berth/contracts';
import { createLogger } from '@berth/observability';
import { MetricsHistory } from '../../../apps/gateway/src/metrics/metrics-history';
import { TEST_REDIS_URL } from '../../support/env';

/** The gateway's per-minute traffic history against a real Redis: several gateways sum into one hash. */
describe('MetricsHistory', () => {
  const prefix = `test:${crypto.randomUUID()}:`;
  const log = createLogger('metrics-history-test', 'silent');
  let redis: Redis;
  beforeAll(() => (redis = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: 1 })));
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
    await redis.quit();
  });

  it('two gateways add their counts into one hash per service and minute, kept for the retention', async () => {
    const now = Date.UTC(2026, 11, 7, 12, 0, 30);
    const a = new MetricsHistory({ redis, keyPrefix: prefix, flushMs: 60_000, now: () => now, log });
    const b = new MetricsHistory({ redis, keyPrefix: prefix, flushMs: 60_000, now: () => now, log });
    for (let i = 0; i < 10; i++) a.request('svc-1', 200, 0.004);
    a.request('svc-1', 503, 0.002);
    b.request('svc-1', 404, 0.04);
    b.coldStart('svc-1', 0.18);
    b.request('svc-2', 200, 0.001);
    await Promise.all([a.flush(), b.flush()]);
    await a.flush(); // nothing new: no double counting
    const key = `${prefix}${RedisKey.serviceMetrics('svc-1', minuteOf(now))}`;
    const p = metricsPoint(minuteOf(now), await redis.hgetall(key));
    expect(p).toMatchObject({ requests: 12, errors5xx: 1, coldStarts: 1 });
    expect(p.latencyP50Ms).toBeGreaterThan(2.5);
    expect(p.latencyP50Ms).toBeLessThanOrEqual(5);
    expect(p.coldStartP50Ms).toBeGreaterThan(100);
    expect(p.coldStartP50Ms).toBeLessThanOrEqual(200);
    expect(await redis.hget(key, 'e4')).toBe('1');
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThan(SERVICE_METRICS_RETENTION_MINUTES * 60 - 10);
    expect((await redis.hgetall(`${prefix}${RedisKey.serviceMetrics('svc-2', minuteOf(now))}`)).n).toBe('1');
  });

  it('a flush Redis refuses keeps its counts for the next one', async () => {
    const now = Date.UTC(2026, 11, 7, 12, 5, 0);
    const broken = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, enableOfflineQueue: false });
    const h = new MetricsHistory({ redis: broken, keyPrefix: prefix, flushMs: 60_000, now: () => now, log });
    h.request('svc-3', 200, 0.01);
    await h.flush(); // not connected: refused, kept
    // The refused MULTI started the lazy connection; the next flush goes through once it is up.
    if (broken.status !== 'ready') await new Promise((r) => broken.once('ready', r));
    await h.flush();
    broken.disconnect();
    expect(await redis.hget(`${prefix}${RedisKey.serviceMetrics('svc-3', minuteOf(now))}`, 'n')).toBe('1');
  });
});
