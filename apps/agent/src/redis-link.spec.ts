import { EventEmitter } from 'node:events';
import type Redis from 'ioredis';
import { RegistrationError } from './registration';
import { watchRedisAuth } from './redis-link';

describe('watchRedisAuth', () => {
  const wrongpass = new Error('WRONGPASS invalid username-password pair or user is disabled.');
  const flush = () => new Promise((r) => setImmediate(r));

  function setup(check: () => Promise<void>) {
    const redis = new EventEmitter();
    let t = 0;
    const out = { revoked: [] as string[], stuck: 0, checks: 0, tick: (ms: number) => (t += ms) };
    const stop = watchRedisAuth({
      redis: redis as unknown as Redis,
      checkRegistration: () => {
        out.checks++;
        return check();
      },
      onRevoked: (why) => out.revoked.push(why),
      onStuck: () => out.stuck++,
      log: () => undefined,
      checkEveryMs: 5_000,
      giveUpAfterMs: 60_000,
      now: () => t,
    });
    return { redis, out, stop };
  }

  it('a refused user and a 401 from the api: the node was revoked', async () => {
    const e401 = new RegistrationError('registration refused: 401 revoked', false);
    e401.status = 401;
    const { redis, out } = setup(() => Promise.reject(e401));
    redis.emit('error', new Error('ECONNREFUSED'));
    expect(out.checks).toBe(0);
    redis.emit('error', wrongpass);
    await flush();
    expect(out.revoked).toEqual(['registration refused: 401 revoked']);
  });

  it('the api still knows the node (Redis restarted): asks at most every 5 s, gives up after a minute, recovers on ready', async () => {
    const { redis, out, stop } = setup(() => Promise.resolve());
    redis.emit('error', wrongpass);
    await flush();
    out.tick(1_000);
    redis.emit('error', wrongpass);
    await flush();
    expect(out.checks).toBe(1);
    out.tick(5_000);
    redis.emit('error', wrongpass);
    await flush();
    expect(out.checks).toBe(2);
    redis.emit('ready');
    out.tick(100_000);
    redis.emit('error', wrongpass);
    expect(out.stuck).toBe(0);
    out.tick(61_000);
    redis.emit('error', wrongpass);
    expect(out.stuck).toBe(1);
    expect(out.revoked).toEqual([]);
    stop();
    expect(redis.listenerCount('error')).toBe(0);
  });
});
