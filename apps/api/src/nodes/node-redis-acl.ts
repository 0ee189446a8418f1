import crypto from 'node:crypto';
import { Inject, Injectable, Logger, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import { DomainError, ErrorCode, nodeRedisAclRules, nodeRedisUser, type NodeRedisAccess, type NodeRedisRequest } from '@berth/contracts';
import { NodeAdminRepository } from '@berth/db';
import type Redis from 'ioredis';
import { agentRedisUrl, API_CONFIG, type ApiConfig } from '../config';
import { REDIS } from '../tokens';

const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

/**
 * One Redis ACL user per node (docs/cluster.md, "Security of the agent link"). The password is
 * handed to the agent once; Postgres keeps only its sha256 (Node.redisPasswordHash), from which the
 * user is re-created (`ACL SETUSER … #<sha256>`) at start and whenever the connection to Redis
 * becomes ready again (a restarted Redis has lost its ACL users). Revocation deletes the user, which
 * also closes its connections.
 */
@Injectable()
export class NodeRedisAcl implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly log = new Logger('node-redis-acl');
  readonly enabled: boolean;
  private readonly url: string;
  private restoring: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private readonly onReady = () => void this.restore('redis ready');

  constructor(
    @Inject(REDIS) private readonly redis: Redis,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    private readonly nodes: NodeAdminRepository,
  ) {
    this.enabled = config.BERTH_REDIS_NODE_ACL === 'on';
    this.url = agentRedisUrl(config);
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) return;
    // Every (re)connection re-creates the users: Redis may have restarted without them.
    this.redis.on('ready', this.onReady);
    // Fail the start on a Redis that cannot do per-node users; do not hang it on one that is down.
    let timer: NodeJS.Timeout | undefined;
    const reachable = await Promise.race([
      this.check().then(() => true),
      new Promise<false>((r) => (timer = setTimeout(() => r(false), 10_000).unref())),
    ]).finally(() => clearTimeout(timer));
    if (!reachable) {
      this.log.warn('Redis not reachable yet: node Redis users are re-created when it is');
      return;
    }
    await this.restore('start');
  }

  onApplicationShutdown(): void {
    this.closed = true;
    this.redis.off('ready', this.onReady);
  }

  /** Redis >= 7 (key selectors %R~/%W~) and an api user allowed to manage ACL users. */
  private async check(): Promise<void> {
    const hint = 'give the api\'s Redis user ACL rights (it runs ACL SETUSER/DELUSER), use Redis >= 7, or set BERTH_REDIS_NODE_ACL=off (agents then share the Redis URL they are configured with)';
    const info = await this.redis.info('server');
    const major = Number(/redis_version:(\d+)/.exec(info)?.[1] ?? 0);
    if (major < 7) throw new Error(`BERTH_REDIS_NODE_ACL=on needs Redis >= 7 (this one is ${/redis_version:(\S+)/.exec(info)?.[1] ?? 'unknown'}): ${hint}`);
    let defaultUser: unknown;
    try {
      defaultUser = await this.redis.call('ACL', 'GETUSER', 'default');
    } catch (e) {
      throw new Error(`BERTH_REDIS_NODE_ACL=on but Redis refuses ACL commands (${(e as Error).message}): ${hint}`);
    }
    // Per-node users protect nothing if a worker can simply connect as the default user.
    const flags = Array.isArray(defaultUser) ? defaultUser[defaultUser.indexOf('flags') + 1] : undefined;
    const host = new URL(this.url).hostname;
    if (Array.isArray(flags) && flags.includes('on') && flags.includes('nopass') && !/^(127\.|localhost$|\[::1\]$)/.test(host)) {
      this.log.warn(
        `Redis' default user needs no password, and agents reach Redis at ${host}: any worker can connect as the default user and bypass its per-node user. Give the default user a password (requirepass, or ACL SETUSER default) and put it in the control plane's REDIS_URL (docs/cluster.md, "Security of the agent link")`,
      );
    }
  }

  /**
   * The `redis` block of a registration answer. `issue` (or a node without a stored hash) makes a
   * new password; `keep` re-creates the user from the stored hash; `none` gives nothing.
   */
  async grant(nodeId: string, storedHash: string | null, want: NodeRedisRequest): Promise<NodeRedisAccess | undefined> {
    if (!this.enabled || want === 'none') return undefined;
    const username = nodeRedisUser(nodeId);
    if (want === 'keep' && storedHash) {
      await this.setUser(nodeId, storedHash);
      return { url: this.url, username };
    }
    const password = crypto.randomBytes(32).toString('base64url');
    const hash = sha256(password);
    await this.setUser(nodeId, hash);
    await this.nodes.setRedisPasswordHash(nodeId, hash);
    return { url: this.url, username, password };
  }

  /** Deletes the node's user, closing its connections. Best effort: a restore later deletes it if Redis was unreachable. */
  async remove(nodeId: string): Promise<void> {
    if (!this.enabled) return;
    try {
      await this.redis.call('ACL', 'DELUSER', nodeRedisUser(nodeId));
    } catch (e) {
      this.log.warn(`could not delete the Redis user of node ${nodeId} (${(e as Error).message}); it goes at the next restore`);
    }
  }

  /** Re-creates every node's user from Postgres and deletes revoked nodes' users; runs once at a time. */
  restore(why: string): Promise<void> {
    if (this.closed) return Promise.resolve();
    if (this.restoring) {
      this.again = true;
      return this.restoring;
    }
    this.restoring = (async () => {
      do {
        this.again = false;
        try {
          const { users, revoked } = await this.nodes.redisUsers();
          for (let i = 0; i < users.length; i += 500) {
            const p = this.redis.pipeline();
            for (const u of users.slice(i, i + 500)) p.call('ACL', 'SETUSER', nodeRedisUser(u.id), ...this.rules(u.id, u.redisPasswordHash));
            failed(await p.exec());
          }
          if (revoked.length) await this.redis.call('ACL', 'DELUSER', ...revoked.map(nodeRedisUser));
          this.log.log(`node Redis users restored (${why}): ${users.length} users, ${revoked.length} revoked removed`);
        } catch (e) {
          if (!this.closed) this.log.error(`restoring node Redis users (${why}) failed: ${(e as Error).message}`);
        }
      } while (this.again && !this.closed);
    })().finally(() => (this.restoring = null));
    return this.restoring;
  }

  private async setUser(nodeId: string, hash: string): Promise<void> {
    try {
      await this.redis.call('ACL', 'SETUSER', nodeRedisUser(nodeId), ...this.rules(nodeId, hash));
    } catch (e) {
      throw new DomainError(ErrorCode.Unavailable, `cannot create the node's Redis user: ${(e as Error).message}`);
    }
  }

  private rules(nodeId: string, hash: string): string[] {
    return ['reset', 'on', `#${hash}`, ...nodeRedisAclRules(nodeId, this.config.BERTH_QUEUE_PREFIX)];
  }
}

function failed(results: [Error | null, unknown][] | null): void {
  const err = results?.find(([e]) => e)?.[0];
  if (err) throw err;
}
