import fs from 'node:fs';
import { Agent, fetch as undiciFetch } from 'undici';
import Redis, { type RedisOptions } from 'ioredis';
import type { NodeRedisAccess } from '@berth/contracts';

/** `fetch` as the agent calls the api with: the system's CAs, or only those of `BERTH_CA_FILE`. */
export type ApiFetch = (url: URL | string, init: RequestInit) => Promise<Response>;

/**
 * The agent's link to the control plane over TLS (docs/cluster.md, "Security of the agent link"):
 * with a CA file, https:// api calls and rediss:// connections trust that CA (PEM, may hold several
 * certificates) instead of the system's; without one, the system's CAs.
 */
export function apiFetch(caFile?: string): ApiFetch {
  if (!caFile) return (url, init) => fetch(url, init);
  const dispatcher = new Agent({ connect: { ca: fs.readFileSync(caFile) } });
  return (url, init) => undiciFetch(url, { ...(init as Parameters<typeof undiciFetch>[1]), dispatcher }) as unknown as Promise<Response>;
}

/**
 * ioredis options for the agent's Redis: the node's own ACL user when the api handed one out, the
 * configured URL otherwise; TLS for rediss:// (with the CA file when given).
 */
export function agentRedisOptions(o: { configuredUrl: string; access?: NodeRedisAccess & { password: string }; caFile?: string }): { url: string; options: RedisOptions } {
  const url = o.access?.url ?? o.configuredUrl;
  const options: RedisOptions = { maxRetriesPerRequest: null };
  if (o.access) {
    options.username = o.access.username;
    options.password = o.access.password;
  }
  if (url.startsWith('rediss://')) options.tls = o.caFile ? { ca: fs.readFileSync(o.caFile) } : {};
  return { url, options };
}

export const newAgentRedis = (o: Parameters<typeof agentRedisOptions>[0]) => {
  const { url, options } = agentRedisOptions(o);
  return new Redis(url, options);
};

/** Whether an error says Redis refused the connection's user/password (deleted user, wrong password). */
export const isRedisAuthError = (e: unknown) => /^(WRONGPASS|NOAUTH)/.test((e as Error)?.message ?? '');
