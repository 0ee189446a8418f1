import { z } from 'zod';
import { nodeQueueName, QueueName, RedisKey } from './queues';

/**
 * The agent's own Redis user (one ACL user per node). At registration the agent says what it needs:
 * - `issue`: it has no Redis password stored: the api makes a new one (replacing any earlier one);
 * - `keep`: it has one stored: the api (re)creates the user from the stored hash and sends no password;
 * - `none`: it uses the Redis URL of its own configuration (a hollow process simulating several nodes
 *   shares one connection, so it cannot use per-node users).
 * A join with a join token always issues a new password.
 */
export const NodeRedisRequestSchema = z.enum(['issue', 'keep', 'none']);
export type NodeRedisRequest = z.infer<typeof NodeRedisRequestSchema>;

/**
 * The registration answer's `redis` block (absent when the api runs with BERTH_REDIS_NODE_ACL=off or
 * the agent asked for `none`). `url` carries no credentials; `password` only when one was issued.
 */
export const NodeRedisAccessSchema = z.object({
  url: z.string().regex(/^rediss?:\/\//, 'must be a redis:// or rediss:// URL'),
  username: z.string().min(1),
  password: z.string().min(16).optional(),
});
export type NodeRedisAccess = z.infer<typeof NodeRedisAccessSchema>;

/** The ACL user name of a node. */
export const nodeRedisUser = (nodeId: string) => `berth-node-${nodeId}`;

/** A literal string as an ACL glob pattern (`*`, `?`, `[`, `]`, `\` escaped). */
export const aclGlobLiteral = (s: string) => s.replace(/[*?[\]\\]/g, (c) => `\\${c}`);

/**
 * The ACL rules of a node's Redis user (after `reset`, before the password). The agent needs:
 * - its own command queue `node-<id>` (BullMQ worker: Lua scripts read and write its keys) and the
 *   shared `node-events` queue (it adds reports and heartbeats; BullMQ's add script reads the queue's
 *   meta and id keys, so read+write);
 * - write-only on log streams and pull-progress hashes (XADD MAXLEN, HSET, EXPIRE need no read);
 * - commands: data commands (key-restricted), scripts (EVAL/EVALSHA: commands inside a script are
 *   checked against the same rules), connection commands (AUTH, HELLO, CLIENT SETNAME, SELECT, PING),
 *   MULTI/EXEC, blocking pops, and INFO (ioredis' ready check, BullMQ's version check);
 * - nothing that lists or touches other keys: no KEYS/SCAN/RANDOMKEY (they ignore key patterns),
 *   no FUNCTION, SCRIPT FLUSH/KILL, no CLIENT TRACKING (BCAST would deliver every changed key's
 *   name), no pub/sub channels, nothing @dangerous (FLUSHALL, CONFIG, ACL,
 *   CLIENT KILL/LIST, DEBUG, …).
 */
export function nodeRedisAclRules(nodeId: string, queuePrefix: string): string[] {
  const queueKeys = (name: string) => `${aclGlobLiteral(`${queuePrefix}:${name}`)}:*`;
  const literalPrefix = (key: string) => `${aclGlobLiteral(key)}*`;
  return [
    'resetkeys',
    'resetchannels',
    '-@all',
    '+@read',
    '+@write',
    '+@scripting',
    '+@connection',
    '+@transaction',
    '+@blocking',
    '-@dangerous',
    '+info',
    '+select',
    '-scan',
    '-randomkey',
    '-keys',
    '-function',
    '-script|flush',
    '-script|kill',
    // Broadcast tracking would deliver the names of every key anyone changes.
    '-client|tracking',
    '-client|caching',
    '-client|trackinginfo',
    '-client|getredir',
    `%RW~${queueKeys(nodeQueueName(nodeId))}`,
    `%RW~${queueKeys(QueueName.NodeEvents)}`,
    `%W~${literalPrefix(RedisKey.logs(''))}`,
    `%W~${literalPrefix(RedisKey.pull(''))}`,
  ];
}
