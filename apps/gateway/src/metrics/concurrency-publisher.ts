import { RedisKey } from '@berth/contracts';
import type { Logger } from '@berth/observability';
import type Redis from 'ioredis';
import type { ConcurrencyTracker } from './concurrency-tracker';

export const concurrencyKeys = (prefix = '') => ({
  gateway: (gatewayId: string) => `${prefix}${RedisKey.concurrency(gatewayId)}`,
  gateways: `${prefix}${RedisKey.concurrencyGateways}`,
});

/**
 * Every interval, writes this gateway's average in-flight per service (serviceId → number) into its own
 * hash with a short TTL, and its id with a timestamp into the gateways set. Services in the routing
 * table with no traffic are written as 0, so the autoscaler can tell "idle" from "no data".
 */
export class ConcurrencyPublisher {
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly deps: {
      redis: Redis;
      tracker: ConcurrencyTracker;
      gatewayId: string;
      keyPrefix: string;
      intervalMs: number;
      now: () => number;
      knownServiceIds: () => Iterable<string>;
      log: Logger;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.publish(), this.deps.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async publish(): Promise<void> {
    const now = this.deps.now();
    const averages = this.deps.tracker.sample(now);
    const fields: Record<string, string> = {};
    for (const id of this.deps.knownServiceIds()) fields[id] = '0';
    for (const [id, avg] of averages) fields[id] = avg.toFixed(3);
    const keys = concurrencyKeys(this.deps.keyPrefix);
    const key = keys.gateway(this.deps.gatewayId);
    const ttlMs = Math.max(3000, this.deps.intervalMs * 5);
    try {
      const multi = this.deps.redis.multi().del(key);
      if (Object.keys(fields).length > 0) multi.hset(key, fields);
      await multi
        .pexpire(key, ttlMs)
        .zadd(keys.gateways, now, this.deps.gatewayId)
        .zremrangebyscore(keys.gateways, '-inf', now - ttlMs * 10)
        .exec();
    } catch (e) {
      this.deps.log.warn({ err: e }, 'could not publish concurrency samples');
    }
  }
}
