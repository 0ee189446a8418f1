import { RedisKey } from '@berth/contracts';
import type Redis from 'ioredis';

/**
 * Sums the concurrency samples of every live gateway: each gateway writes its own hash
 * (serviceId → average in-flight over its last second) and its id + timestamp into a sorted set.
 * Returns null when no gateway wrote recently: "no data" must not read as "idle".
 */
export class ConcurrencyReader {
  constructor(private readonly deps: { redis: Redis; keyPrefix: string; maxAgeMs: number }) {}

  async read(now: number): Promise<Map<string, number> | null> {
    const { redis, keyPrefix } = this.deps;
    const gateways = await redis.zrangebyscore(`${keyPrefix}${RedisKey.concurrencyGateways}`, now - this.deps.maxAgeMs, '+inf');
    if (gateways.length === 0) return null;
    const pipeline = redis.pipeline();
    for (const g of gateways) pipeline.hgetall(`${keyPrefix}${RedisKey.concurrency(g)}`);
    const results = (await pipeline.exec()) ?? [];
    const sums = new Map<string, number>();
    let any = false;
    for (const [err, hash] of results) {
      if (err || !hash) continue;
      any = true;
      for (const [serviceId, value] of Object.entries(hash as Record<string, string>)) {
        const v = Number(value);
        if (Number.isFinite(v) && v >= 0) sums.set(serviceId, (sums.get(serviceId) ?? 0) + v);
      }
    }
    return any ? sums : null;
  }
}
