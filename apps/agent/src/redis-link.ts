import type Redis from 'ioredis';
import { isRedisAuthError, newAgentRedis } from './api-link';
import { RegistrationError, type NodeRedisLink } from './registration';

/**
 * The agent's Redis connection: its node's own ACL user when the api handed one out. A stored
 * password Redis refuses at start (the api issued a newer one) is replaced once through `reissue`.
 * Redis unreachable at start is not an error: ioredis keeps retrying, as before.
 */
export async function connectAgentRedis(o: {
  configuredUrl: string;
  access?: NodeRedisLink;
  caFile?: string;
  reissue: () => Promise<NodeRedisLink | undefined>;
  log: (msg: string) => void;
  timeoutMs?: number;
}): Promise<{ redis: Redis; access?: NodeRedisLink }> {
  const open = (access?: NodeRedisLink) => newAgentRedis({ configuredUrl: o.configuredUrl, access, caFile: o.caFile });
  let redis = open(o.access);
  if (!o.access) return { redis };
  if ((await firstContact(redis, o.timeoutMs ?? 10_000)) !== 'auth') return { redis, access: o.access };
  o.log(`Redis refused the node's user ${o.access.username}: asking the api for a new password`);
  redis.disconnect();
  const access = await o.reissue();
  redis = open(access);
  return { redis, access };
}

function firstContact(redis: Redis, timeoutMs: number): Promise<'ready' | 'auth' | 'timeout'> {
  return new Promise((resolve) => {
    const done = (v: 'ready' | 'auth' | 'timeout') => {
      clearTimeout(t);
      redis.off('ready', onReady);
      redis.off('error', onError);
      resolve(v);
    };
    const onReady = () => done('ready');
    const onError = (e: Error) => isRedisAuthError(e) && done('auth');
    const t = setTimeout(() => done('timeout'), timeoutMs);
    if (redis.status === 'ready') return done('ready');
    redis.on('ready', onReady);
    redis.on('error', onError);
  });
}

/**
 * While running: Redis refusing the node's user means it was revoked (the api deleted the user) or
 * Redis restarted and the api has not re-created the users yet. The agent asks the api (at most
 * every `checkEveryMs`): a 401 is a revocation → `onRevoked` (the agent stops, exit 78); otherwise
 * the api has re-created the user and ioredis' next retry succeeds. Refused for longer than
 * `giveUpAfterMs` (the stored password no longer matches) → `onStuck` (the agent exits; systemd
 * restarts it, and the start asks for a new password).
 */
export function watchRedisAuth(o: {
  redis: Redis;
  checkRegistration: () => Promise<void>;
  onRevoked: (why: string) => void;
  onStuck: () => void;
  log: (msg: string) => void;
  checkEveryMs?: number;
  giveUpAfterMs?: number;
  now?: () => number;
}): () => void {
  const now = o.now ?? Date.now;
  let failingSince: number | null = null;
  let lastCheck = -Infinity;
  let checking = false;
  const onReady = () => (failingSince = null);
  const onError = (e: Error) => {
    if (!isRedisAuthError(e)) return;
    const t = now();
    failingSince ??= t;
    if (t - failingSince > (o.giveUpAfterMs ?? 60_000)) return o.onStuck();
    if (checking || t - lastCheck < (o.checkEveryMs ?? 5_000)) return;
    lastCheck = t;
    checking = true;
    o.log(`Redis refuses this node's user (${e.message}); asking the api whether the node was revoked`);
    o.checkRegistration()
      .catch((err: unknown) => {
        if (err instanceof RegistrationError && err.status === 401) o.onRevoked(err.message);
        else o.log(`registration check failed: ${(err as Error).message}`);
      })
      .finally(() => (checking = false));
  };
  o.redis.on('ready', onReady);
  o.redis.on('error', onError);
  return () => {
    o.redis.off('ready', onReady);
    o.redis.off('error', onError);
  };
}
