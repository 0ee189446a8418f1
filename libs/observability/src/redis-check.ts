import type { HealthCheck } from './health';

/** Readiness check for an ioredis client (or anything with ping()). */
export const redisCheck = (client: { ping(): Promise<string> }): HealthCheck => ({
  name: 'redis',
  check: async () => {
    const r = await client.ping();
    if (r !== 'PONG') throw new Error(`unexpected PING reply ${r}`);
  },
});
