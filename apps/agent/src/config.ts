import dns from 'node:dns/promises';
import os from 'node:os';
import { z } from 'zod';
import { bool, commonSchema, durationMs, port } from '@berth/config';
import { registryAllowListEnv } from '@berth/oci';

const optionalInt = z.coerce.number().int().min(1).optional();

/** The agent has no database access: a worker node is not trusted with Postgres. */
export const agentConfigSchema = commonSchema.extend({
  BERTH_AGENT_OPS_HOST: z.string().default('127.0.0.1'),
  BERTH_AGENT_OPS_PORT: port(9102),
  BERTH_NODE_NAME: z.string().regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'must be a DNS label').default('node-1'),
  /** Where the api listens; the agent registers there (join token once, then its own node credential). */
  BERTH_API_URL: z.string().url().default('http://127.0.0.1:8080'),
  /**
   * PEM CA certificate(s) the agent trusts for an https:// BERTH_API_URL and a rediss:// Redis URL
   * (the system's CAs when unset).
   */
  BERTH_CA_FILE: z.preprocess((v) => (v === '' ? undefined : v), z.string().optional()),
  /** Needed only to join (no credential stored in <data dir>/agent-<name>/node-credential yet, or it was revoked). */
  BERTH_JOIN_TOKEN: z.preprocess((v) => (v === '' ? undefined : v), z.string().regex(/^bjt_/, 'must be a node join token (bjt_...)').optional()),
  /** Address the gateway reaches this node's containers through (reported at registration). */
  BERTH_NODE_ADDRESS: z.string().min(1).default('127.0.0.1'),
  /**
   * IPv4 address other nodes reach this node at for pod traffic (host-gw next hop, WireGuard
   * endpoint). Default: BERTH_NODE_ADDRESS (a host name is resolved to IPv4 at start).
   */
  BERTH_NODE_UNDERLAY_ADDRESS: z.preprocess((v) => (v === '' ? undefined : v), z.string().min(1).optional()),
  /** false: the node joins the pod network but never gets replicas (an edge or control-plane host). */
  BERTH_NODE_SCHEDULABLE: bool(true),
  /** Name of the WireGuard interface (wireguard network mode). wireguard-go needs a name unique on the machine. */
  BERTH_WIREGUARD_INTERFACE: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'must be an interface name of at most 15 characters').default('berthwg0'),
  /** k=v,k=v */
  BERTH_NODE_LABELS: z
    .string()
    .default('')
    .transform((s, ctx) => {
      const out: Record<string, string> = {};
      for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
        const i = part.indexOf('=');
        if (i <= 0) {
          ctx.addIssue({ code: 'custom', message: `label "${part}" is not key=value` });
          return z.NEVER;
        }
        out[part.slice(0, i)] = part.slice(i + 1);
      }
      return out;
    }),
  /** Capacity offered to the scheduler; defaults from the machine. */
  BERTH_NODE_CPU_MILLIS: optionalInt,
  BERTH_NODE_MEMORY_MIB: optionalInt,
  BERTH_NODE_PIDS: optionalInt,
  BERTH_RUNTIME: z.enum(['runc', 'hollow']).default('runc'),
  /**
   * runc: who writes the container cgroups. `auto` (default): systemd when systemd is PID 1
   * (/run/systemd/system exists) on cgroup v2 (scopes `berth-<id>.scope` under slice `berth-<node>.slice`), else cgroupfs
   * (directories `/berth/<node>/<id>`).
   */
  BERTH_CGROUP_DRIVER: z.enum(['auto', 'cgroupfs', 'systemd']).default('auto'),
  /** hollow only: host this many simulated nodes in one process (named <BERTH_NODE_NAME>-<i>). */
  BERTH_HOLLOW_NODES: z.coerce.number().int().min(1).max(5000).default(1),
  BERTH_QUEUE_PREFIX: z.string().min(1).default('bull'),
  /** Overrides the interval the api hands out at registration. */
  BERTH_HEARTBEAT_INTERVAL_MS: durationMs(0),
  /** Commands handled at once per node (a slow pull must not hold up a stop). */
  BERTH_AGENT_CONCURRENCY: z.coerce.number().int().min(1).default(8),
  /**
   * runc: the bridge the node's containers sit on. Several agents on one host need one bridge each;
   * `auto` derives it from the node name (`bz<hash>`). Its subnet is the node's pod subnet, assigned
   * by the api at registration (docs/cluster.md).
   */
  BERTH_CNI_BRIDGE: z.string().max(15).default('berth0'),
  /** Overrides the assigned pod subnet for the bridge (only for a node outside the pod network; routes will not match). */
  BERTH_CNI_SUBNET: z.preprocess((v) => (v === '' ? undefined : v), z.string().regex(/^\d+\.\d+\.\d+\.\d+\/\d+$/, 'must be an IPv4 CIDR').optional()),
  /**
   * runc: tenant isolation (nftables table `berth_iso_<bridge>`, docs/cluster.md): replicas reach only
   * their own project's replicas, never the node's or other nodes' addresses nor 169.254.0.0/16.
   * `off` leaves every pod open to every other (single-tenant machines, kernels without nf_tables).
   */
  BERTH_TENANT_ISOLATION: z.enum(['on', 'off']).default('on'),
  BERTH_REGISTRY_INSECURE: z
    .string()
    .default('')
    .transform((s) => s.split(',').map((x) => x.trim()).filter(Boolean)),
  /** Non-public addresses registries may be reached at (CIDRs, host[:port]); see docs/oci.md. */
  BERTH_REGISTRY_ALLOW_PRIVATE: registryAllowListEnv(),
  /** Restart backoff of crashing replicas (first delay; doubles up to 5 min). */
  BERTH_RESTART_BACKOFF_MS: durationMs(10_000),
  /**
   * What a graceful shutdown (SIGTERM) does with running containers: `keep` them for the next agent to
   * recover (production: an agent upgrade must not restart the apps), or `stop` them (tests, dev).
   * Defaults to `stop` when NODE_ENV=test.
   */
  BERTH_AGENT_ON_EXIT: z.enum(['keep', 'stop']).optional(),
  /** Image GC: collect unused images when the image store's filesystem is fuller than this (percent)… */
  BERTH_IMAGE_GC_HIGH_PERCENT: z.coerce.number().min(1).max(100).default(85),
  /** …down to this (percent, below the high mark). Pulls that would pass the high mark are refused. */
  BERTH_IMAGE_GC_LOW_PERCENT: z.coerce.number().min(0).max(99).default(80),
  /** How often disk use is checked besides after each pull. */
  BERTH_IMAGE_GC_INTERVAL_MS: durationMs(60_000),
  /**
   * Give the image store a budget of this many bytes instead of watching its filesystem: the
   * watermarks then apply to the store's own blobs + snapshots. Unset = statfs of the data dir.
   */
  BERTH_IMAGE_STORE_BYTES: z.coerce.number().int().min(1).optional(),
  BERTH_SHIP_LOGS: z.enum(['true', 'false', '1', '0']).default('true').transform((v) => v === 'true' || v === '1'),
});
export type AgentConfig = z.infer<typeof agentConfigSchema>;

export function defaultCapacity(c: AgentConfig) {
  return {
    cpuMillis: c.BERTH_NODE_CPU_MILLIS ?? os.cpus().length * 1000,
    memoryMiB: c.BERTH_NODE_MEMORY_MIB ?? Math.floor(os.totalmem() / 1024 / 1024),
    pids: c.BERTH_NODE_PIDS ?? 32_768,
  };
}

/** The node's bridge: configured, or derived from its name when `auto`. */
export function cniBridgeFor(c: Pick<AgentConfig, 'BERTH_CNI_BRIDGE'>, nodeName: string): string {
  if (c.BERTH_CNI_BRIDGE !== 'auto') return c.BERTH_CNI_BRIDGE;
  let h = 0;
  for (const ch of nodeName) h = (h * 31 + ch.charCodeAt(0)) >>> 0;
  return `bz${h.toString(16).padStart(8, '0').slice(0, 8)}`;
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1?\d?\d)(\.(25[0-5]|2[0-4]\d|1?\d?\d)){3}$/;

/**
 * The node's underlay address as IPv4: BERTH_NODE_UNDERLAY_ADDRESS, else BERTH_NODE_ADDRESS; a host
 * name is resolved (IPv4 only). Throws a message naming the variable when it cannot be.
 */
export async function resolveUnderlay(
  c: Pick<AgentConfig, 'BERTH_NODE_UNDERLAY_ADDRESS' | 'BERTH_NODE_ADDRESS'>,
  lookup: (host: string) => Promise<string> = async (h) => (await dns.lookup(h, { family: 4 })).address,
): Promise<string> {
  const name = c.BERTH_NODE_UNDERLAY_ADDRESS ? 'BERTH_NODE_UNDERLAY_ADDRESS' : 'BERTH_NODE_ADDRESS';
  const v = c.BERTH_NODE_UNDERLAY_ADDRESS ?? c.BERTH_NODE_ADDRESS;
  if (IPV4.test(v)) return v;
  if (v.includes(':')) throw new Error(`${name}=${v}: the pod network needs an IPv4 underlay address; set BERTH_NODE_UNDERLAY_ADDRESS to this node's IPv4 address`);
  try {
    return await lookup(v);
  } catch (e) {
    throw new Error(`${name}=${v}: cannot resolve it to an IPv4 address (${(e as Error).message}); set BERTH_NODE_UNDERLAY_ADDRESS to this node's IPv4 address`);
  }
}
