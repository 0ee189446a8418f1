import fs from 'node:fs';
import path from 'node:path';
import { parseNodeRegistrationResponse, type NodeCapacity, type NodeRedisAccess, type NodeRedisRequest, type NodeRegistrationResponse } from '@berth/contracts';
import type { ApiFetch } from './api-link';

export interface NodeRegistrationRequest {
  name: string;
  address: string;
  labels: Record<string, string>;
  capacity: NodeCapacity;
  agentVersion: string;
  /** IPv4 address other nodes reach this node at (pod traffic, WireGuard). */
  underlay?: string;
  /** Whether the node needs a pod subnet (false: hollow). */
  podNetwork?: boolean;
  /** wireguard mode: the node's public key. */
  wireguardPublicKey?: string;
  /** false: an edge / control-plane host that never gets replicas. */
  schedulable?: boolean;
  /** The node's own Redis user: `issue` a password, `keep` the stored one, `none` (use the configured REDIS_URL). */
  redis?: NodeRedisRequest;
}

/** The api's answer (libs/contracts NodeRegistrationResponse): node id, heartbeat, credential on join, Redis user, pod network. */
export type NodeRegistrationResult = NodeRegistrationResponse;

export class RegistrationError extends Error {
  constructor(
    message: string,
    readonly retryable: boolean,
  ) {
    super(message);
    this.name = 'RegistrationError';
  }
  /** The HTTP status the api answered, when it answered. */
  status?: number;
}

/**
 * POST {apiUrl}/v1/nodes/register with a join token (bjt_…) or the node credential (bnc_…). 4xx (bad or revoked token, invalid facts)
 * is final; network errors and 5xx are retried with backoff up to `attempts`.
 */
export async function registerNode(
  apiUrl: string,
  bearer: string,
  req: NodeRegistrationRequest,
  opts: { attempts?: number; delayMs?: number; sleep?: (ms: number) => Promise<void>; fetch?: ApiFetch } = {},
): Promise<NodeRegistrationResult> {
  const attempts = opts.attempts ?? 10;
  const sleep = opts.sleep ?? ((ms: number) => new Promise((r) => setTimeout(r, ms)));
  let last: Error = new Error('not attempted');
  for (let i = 0; i < attempts; i++) {
    if (i > 0) await sleep(Math.min(10_000, (opts.delayMs ?? 500) * 2 ** (i - 1)));
    let res: Response;
    try {
      res = await (opts.fetch ?? fetch)(new URL('/v1/nodes/register', apiUrl), {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${bearer}` },
        body: JSON.stringify(req),
        signal: AbortSignal.timeout(10_000),
      });
    } catch (e) {
      last = new RegistrationError(`cannot reach ${apiUrl}: ${(e as Error).message}`, true);
      continue;
    }
    const text = await res.text();
    if (res.ok) {
      try {
        return parseNodeRegistrationResponse(JSON.parse(text));
      } catch (e) {
        throw new RegistrationError(`registration answer does not match the contract (${(e as Error).message}): ${text.slice(0, 200)}`, false);
      }
    }
    const refused = new RegistrationError(`registration refused: ${res.status} ${apiMessage(text)}`, res.status >= 500 || res.status === 429);
    refused.status = res.status;
    last = refused;
    if (!refused.retryable) throw refused;
  }
  throw last;
}

function apiMessage(text: string): string {
  try {
    const body = JSON.parse(text) as { error?: { message?: string } };
    if (body.error?.message) return body.error.message;
  } catch {
    /* not JSON */
  }
  return text.slice(0, 300);
}

/** Where a node keeps its own credential: `<dir>/node-credential`, mode 0600 (dir 0700). */
export class NodeCredentialFile {
  constructor(readonly dir: string) {}

  get path(): string {
    return path.join(this.dir, 'node-credential');
  }

  read(): string | undefined {
    try {
      const v = fs.readFileSync(this.path, 'utf8').trim();
      return v.startsWith('bnc_') ? v : undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Written atomically, readable by the agent's user only. */
  write(credential: string): void {
    this.writeFile(this.path, credential);
  }

  /** The node's own Redis password (`<dir>/redis-password`, 0600), handed out once by the api. */
  get redisPasswordPath(): string {
    return path.join(this.dir, 'redis-password');
  }

  readRedisPassword(): string | undefined {
    try {
      return fs.readFileSync(this.redisPasswordPath, 'utf8').trim() || undefined;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  writeRedisPassword(password: string): void {
    this.writeFile(this.redisPasswordPath, password);
  }

  private writeFile(file: string, value: string): void {
    fs.mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, `${value}\n`, { mode: 0o600 });
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, file);
  }
}

/** A registration's Redis user with its password (handed out now, or the stored one). */
export type NodeRedisLink = NodeRedisAccess & { password: string };

/**
 * A node's registration at start: with its stored credential when it has one; otherwise (first
 * start, or the stored one refused with 401 — revoked, or replaced) with the join token, storing
 * the credential the api hands out. A revoked node cannot come back with an old join token: the
 * api accepts only one created after the revocation.
 *
 * Redis: unless `req.redis` is `none`, the agent asks for its own Redis user — `keep` when it has a
 * password stored (`<dir>/redis-password`), `issue` when not (or `forceIssue`: the stored one was
 * refused) — and stores a password the api hands out. No `redis` in the answer (the api runs with
 * BERTH_REDIS_NODE_ACL=off): the agent uses its configured REDIS_URL.
 */
export async function joinOrReturn(opts: {
  apiUrl: string;
  joinToken: string | undefined;
  store: NodeCredentialFile;
  req: NodeRegistrationRequest;
  register?: typeof registerNode;
  fetch?: ApiFetch;
  /** Ask for a new Redis password even if one is stored (it was refused). */
  forceIssue?: boolean;
  log?: (msg: string) => void;
}): Promise<Omit<NodeRegistrationResult, 'redis'> & { credential: string; redis?: NodeRedisLink }> {
  const register = opts.register ?? registerNode;
  const call = (bearer: string, redis?: NodeRedisRequest) => register(opts.apiUrl, bearer, { ...opts.req, ...(redis ? { redis } : {}) }, opts.fetch ? { fetch: opts.fetch } : {});
  const want = (): NodeRedisRequest => (opts.req.redis === 'none' ? 'none' : !opts.forceIssue && opts.store.readRedisPassword() ? 'keep' : 'issue');
  const withRedis = async (r: NodeRegistrationResult, credential: string) => {
    const { redis, ...rest } = r;
    if (!redis) return { ...rest, credential };
    if (redis.password) {
      opts.store.writeRedisPassword(redis.password);
      return { ...rest, credential, redis: { ...redis, password: redis.password } };
    }
    const stored = opts.store.readRedisPassword();
    if (stored) return { ...rest, credential, redis: { ...redis, password: stored } };
    // The api kept a password this node does not have (lost file): ask for a new one.
    const again = await call(credential, 'issue');
    if (!again.redis?.password) throw new RegistrationError(`the api answered the Redis password request of ${opts.req.name} without a password`, false);
    opts.store.writeRedisPassword(again.redis.password);
    return { ...rest, credential, redis: { ...again.redis, password: again.redis.password } };
  };
  const stored = opts.store.read();
  if (stored) {
    try {
      return await withRedis(await call(stored, want()), stored);
    } catch (e) {
      if (!(e instanceof RegistrationError) || e.status !== 401) throw e;
      if (!opts.joinToken) {
        throw new RegistrationError(
          `node ${opts.req.name}: the api refused the credential in ${opts.store.path} (${e.message}). To re-join, start the agent with BERTH_JOIN_TOKEN set to a join token created after the revocation`,
          false,
        );
      }
      opts.log?.(`node ${opts.req.name}: stored credential refused (${e.message}); joining again with the join token`);
    }
  }
  if (!opts.joinToken) {
    throw new RegistrationError(
      `node ${opts.req.name}: no node credential in ${opts.store.path} and no BERTH_JOIN_TOKEN to join with: create one with \`berth nodes tokens create --node ${opts.req.name}\``,
      false,
    );
  }
  const joined = await call(opts.joinToken, opts.req.redis === 'none' ? 'none' : 'issue');
  if (!joined.credential) throw new RegistrationError(`the api answered the join of ${opts.req.name} without a node credential`, false);
  opts.store.write(joined.credential);
  return withRedis(joined, joined.credential);
}
