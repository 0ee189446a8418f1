import crypto from 'node:crypto';
import type { NodeAdminRepository } from '@berth/db';
import type Redis from 'ioredis';
import { apiConfigSchema } from '../config';
import { NodeRedisAcl } from './node-redis-acl';

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

/** Redis as far as NodeRedisAcl uses it: ACL calls recorded; the real Redis is exercised in test/e2e/workers. */
function fakeRedis(o: { version?: string; aclError?: string } = {}) {
  const calls: string[][] = [];
  const call = async (...args: string[]) => {
    calls.push(args);
    if (o.aclError) throw new Error(o.aclError);
    if (args[1] === 'GETUSER') return ['flags', ['on', 'nopass']];
    return 'OK';
  };
  const redis = {
    calls,
    call,
    info: async () => `redis_version:${o.version ?? '7.0.15'}\r\n`,
    pipeline: () => {
      const queued: string[][] = [];
      const p = { call: (...a: string[]) => (queued.push(a), p), exec: async () => queued.map((a) => (calls.push(a), [null, 'OK'])) };
      return p;
    },
    on: () => undefined,
    off: () => undefined,
  };
  return redis;
}

function setup(env: Record<string, string> = {}, redisOpts: Parameters<typeof fakeRedis>[0] = {}) {
  const config = apiConfigSchema.parse({ NODE_ENV: 'test', DATABASE_URL: 'postgresql://x@127.0.0.1/x', REDIS_URL: 'redis://:secret@10.0.0.1:6379/2', ...env });
  const hashes = new Map<string, string | null>();
  const repo = {
    setRedisPasswordHash: async (id: string, h: string | null) => void hashes.set(id, h),
    redisUsers: async () => ({ users: [{ id: 'n1', redisPasswordHash: 'a'.repeat(64) }], revoked: ['n9'] }),
  };
  const redis = fakeRedis(redisOpts);
  const acl = new NodeRedisAcl(redis as unknown as Redis, config, repo as unknown as NodeAdminRepository);
  return { acl, redis, hashes };
}

describe('NodeRedisAcl', () => {
  it('issue: a new password, its sha256 in Postgres and in ACL SETUSER; the URL handed out has no credentials', async () => {
    const { acl, redis, hashes } = setup();
    const r = await acl.grant('n1', null, 'issue');
    expect(r).toEqual({ url: 'redis://10.0.0.1:6379/2', username: 'berth-node-n1', password: expect.stringMatching(/^[\w-]{43}$/) });
    expect(hashes.get('n1')).toBe(sha256(r!.password!));
    expect(redis.calls[0]!.slice(0, 5)).toEqual(['ACL', 'SETUSER', 'berth-node-n1', 'reset', 'on']);
    expect(redis.calls[0]![5]).toBe(`#${sha256(r!.password!)}`);
  });

  it('keep: the user re-created from the stored hash, no password; a node without a hash gets one issued; none: nothing', async () => {
    const { acl, redis, hashes } = setup({ BERTH_AGENT_REDIS_URL: 'rediss://cp.example:6380' });
    expect(await acl.grant('n1', 'b'.repeat(64), 'keep')).toEqual({ url: 'rediss://cp.example:6380', username: 'berth-node-n1' });
    expect(redis.calls[0]![5]).toBe(`#${'b'.repeat(64)}`);
    expect(hashes.size).toBe(0);
    expect((await acl.grant('n2', null, 'keep'))?.password).toBeDefined();
    expect(await acl.grant('n3', null, 'none')).toBeUndefined();
    expect(redis.calls.map((c) => c[2])).toEqual(['berth-node-n1', 'berth-node-n2']);
  });

  it('off: no users, nothing handed out, nothing removed', async () => {
    const { acl, redis } = setup({ BERTH_REDIS_NODE_ACL: 'off' });
    await acl.onApplicationBootstrap();
    expect(await acl.grant('n1', null, 'issue')).toBeUndefined();
    await acl.remove('n1');
    expect(redis.calls).toEqual([]);
  });

  it('restore: every user with a hash re-created, revoked nodes\' users deleted', async () => {
    const { acl, redis } = setup();
    await acl.restore('test');
    expect(redis.calls.map((c) => c.slice(0, 3))).toEqual([
      ['ACL', 'SETUSER', 'berth-node-n1'],
      ['ACL', 'DELUSER', 'berth-node-n9'],
    ]);
  });

  it('refuses to start on a Redis without per-node users (old version, no ACL rights), naming the way out', async () => {
    await expect(setup({}, { version: '6.2.14' }).acl.onApplicationBootstrap()).rejects.toThrow(/needs Redis >= 7 \(this one is 6\.2\.14\).*BERTH_REDIS_NODE_ACL=off/);
    await expect(setup({}, { aclError: "NOPERM this user has no permissions to run the 'acl' command" }).acl.onApplicationBootstrap()).rejects.toThrow(/refuses ACL commands.*NOPERM.*BERTH_REDIS_NODE_ACL=off/);
  });

  it('a Redis error while creating a user is a 503 for the agent to retry', async () => {
    await expect(setup({}, { aclError: 'LOADING' }).acl.grant('n1', null, 'issue')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
  });
});
