import { z } from 'zod';

/**
 * Which network addresses a registry request may connect to (pure: no I/O).
 *
 * An image reference names a host the API and the agents then connect to, so without a rule a
 * user could make them probe the internal network (`localhost:1/x:v1`) or read a cloud metadata
 * service (`169.254.169.254/latest:v1`). Every address a registry name resolves to is classified;
 * only `public` ones pass unless an admin allow-list entry covers the address:
 *
 *   - a CIDR (`10.0.0.0/8`, `fd00::/8`, `192.168.1.7`): any address inside it, whatever its rule;
 *   - a host, optionally with a port (`registry.lan:5000`, `localhost:5000`, `127.0.0.1:5000`):
 *     connections to that name (and port) may reach loopback, private and CGNAT addresses, never
 *     link-local or metadata ones (a name can be re-pointed; opening those needs a CIDR).
 *
 * `unspecified` (0.0.0.0 reaches the local host on Linux), `multicast` and `broadcast` are never
 * connectable, whatever the allow-list says.
 */

export type AddressRule =
  | 'public'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'link-local'
  | 'metadata'
  | 'unspecified'
  | 'multicast'
  | 'broadcast'
  | 'reserved';

/** What each rule means, for error messages. */
export const ADDRESS_RULE_TEXT: Record<AddressRule, string> = {
  public: 'a public address',
  loopback: 'a loopback address (this host)',
  private: 'a private-network address (RFC 1918 / fc00::/7)',
  cgnat: 'a carrier-grade NAT address (100.64.0.0/10)',
  'link-local': 'a link-local address (169.254.0.0/16, fe80::/10)',
  metadata: 'a cloud metadata service address',
  unspecified: 'the unspecified address (0.0.0.0/8, ::)',
  multicast: 'a multicast address',
  broadcast: 'the broadcast address',
  reserved: 'a reserved or documentation address',
};

/** Rules no allow-list entry can open. */
const NEVER: ReadonlySet<AddressRule> = new Set(['unspecified', 'multicast', 'broadcast']);
/** Rules a host entry opens (a CIDR entry opens whatever it covers). */
const HOST_ENTRY_OPENS: ReadonlySet<AddressRule> = new Set(['loopback', 'private', 'cgnat']);

/** The local registry `npm run up` and the tests use stays reachable without configuration. */
export const DEFAULT_REGISTRY_ALLOW = ['127.0.0.1:5000', 'localhost:5000'] as const;

type Bytes = number[];

/** 4 bytes for IPv4, 16 for IPv6 (zone ids such as `%eth0` dropped); undefined when not an IP literal. */
export function parseIp(input: string): Bytes | undefined {
  let s = input.trim();
  if (s.startsWith('[') && s.endsWith(']')) s = s.slice(1, -1);
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  if (!s.includes(':')) return parseV4(s);
  return parseV6(s);
}

function parseV4(s: string): Bytes | undefined {
  const parts = s.split('.');
  if (parts.length !== 4) return undefined;
  const out: Bytes = [];
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255 || (p.length > 1 && p.startsWith('0'))) return undefined;
    out.push(n);
  }
  return out;
}

function parseV6(input: string): Bytes | undefined {
  let s = input;
  // An embedded IPv4 in the last 32 bits (::ffff:1.2.3.4) becomes two hex groups.
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    const q = parseV4(s.slice(lastColon + 1));
    if (!q) return undefined;
    s = `${s.slice(0, lastColon + 1)}${((q[0]! << 8) | q[1]!).toString(16)}:${((q[2]! << 8) | q[3]!).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (x: string) => (x ? x.split(':') : []);
  let all: string[];
  if (halves.length === 1) {
    all = groups(s);
  } else {
    const h = groups(halves[0]!);
    const r = groups(halves[1]!);
    if (h.length + r.length > 7) return undefined;
    all = [...h, ...Array<string>(8 - h.length - r.length).fill('0'), ...r];
  }
  if (all.length !== 8) return undefined;
  const out: Bytes = [];
  for (const g of all) {
    if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
    const n = parseInt(g, 16);
    out.push(n >> 8, n & 0xff);
  }
  return out;
}

function inPrefix(addr: Bytes, net: Bytes, bits: number): boolean {
  if (addr.length !== net.length) return false;
  for (let i = 0; i < addr.length && bits > 0; i++, bits -= 8) {
    const mask = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if ((addr[i]! & mask) !== (net[i]! & mask)) return false;
  }
  return true;
}

const v4 = (cidr: string): [Bytes, number] => {
  const [a, b] = cidr.split('/');
  return [parseV4(a!)!, Number(b ?? 32)];
};
const v6 = (cidr: string): [Bytes, number] => {
  const [a, b] = cidr.split('/');
  return [parseV6(a!)!, Number(b ?? 128)];
};

// Order matters: the first match names the rule (metadata before link-local and private).
const V4_RULES: [AddressRule, [Bytes, number]][] = [
  ['metadata', v4('169.254.169.254/32')], // AWS, GCP, Azure, OpenStack, DigitalOcean, Oracle
  ['metadata', v4('169.254.170.2/32')], // AWS ECS task metadata
  ['metadata', v4('100.100.100.200/32')], // Alibaba Cloud
  ['metadata', v4('168.63.129.16/32')], // Azure wire server
  ['unspecified', v4('0.0.0.0/8')],
  ['loopback', v4('127.0.0.0/8')],
  ['link-local', v4('169.254.0.0/16')],
  ['private', v4('10.0.0.0/8')],
  ['private', v4('172.16.0.0/12')],
  ['private', v4('192.168.0.0/16')],
  ['cgnat', v4('100.64.0.0/10')],
  ['broadcast', v4('255.255.255.255/32')],
  ['multicast', v4('224.0.0.0/4')],
  ['reserved', v4('240.0.0.0/4')],
  ['reserved', v4('192.0.0.0/24')],
  ['reserved', v4('192.0.2.0/24')],
  ['reserved', v4('198.18.0.0/15')],
  ['reserved', v4('198.51.100.0/24')],
  ['reserved', v4('203.0.113.0/24')],
];
const V6_RULES: [AddressRule, [Bytes, number]][] = [
  ['metadata', v6('fd00:ec2::254/128')], // AWS (IPv6)
  ['unspecified', v6('::/128')],
  ['loopback', v6('::1/128')],
  ['link-local', v6('fe80::/10')],
  ['private', v6('fc00::/7')],
  ['private', v6('fec0::/10')], // deprecated site-local
  ['multicast', v6('ff00::/8')],
  ['reserved', v6('100::/64')],
  ['reserved', v6('2001:db8::/32')],
  ['reserved', v6('::/96')], // deprecated IPv4-compatible
];

/** An IPv4 address carried inside an IPv6 one (mapped ::ffff:0:0/96, NAT64 64:ff9b::/96, 6to4 2002::/16). */
function embeddedV4(b: Bytes): Bytes | undefined {
  if (b.length !== 16) return undefined;
  if (inPrefix(b, v6('::ffff:0:0/96')[0], 96) || inPrefix(b, v6('64:ff9b::/96')[0], 96)) return b.slice(12);
  if (b[0] === 0x20 && b[1] === 0x02) return b.slice(2, 6);
  return undefined;
}

/** The rule an IP address falls under; throws on something that is not an IP address. */
export function classifyAddress(ip: string): AddressRule {
  const b = parseIp(ip);
  if (!b) throw new Error(`'${ip}' is not an IP address`);
  return classifyBytes(b);
}

function classifyBytes(b: Bytes): AddressRule {
  const inner = embeddedV4(b);
  if (inner) return classifyBytes(inner);
  for (const [rule, [net, bits]] of b.length === 4 ? V4_RULES : V6_RULES) if (inPrefix(b, net, bits)) return rule;
  return 'public';
}

export type AllowEntry =
  | { kind: 'cidr'; text: string; net: Bytes; bits: number }
  | { kind: 'host'; text: string; host: string; port?: number };

export interface AddressPolicy {
  allow: AllowEntry[];
}

/**
 * Parses allow-list entries (`10.0.0.0/8`, `fd00::/8`, `192.168.1.7`, `registry.lan`,
 * `registry.lan:5000`, `[::1]:5000`). Throws an Error naming the first bad entry.
 */
export function parseAllowList(entries: readonly string[]): AddressPolicy {
  const allow: AllowEntry[] = [];
  for (const raw of entries) {
    const text = raw.trim();
    if (!text) continue;
    const slash = text.indexOf('/');
    if (slash >= 0) {
      const net = parseIp(text.slice(0, slash));
      const bitsText = text.slice(slash + 1);
      const bits = Number(bitsText);
      if (!net || !/^\d{1,3}$/.test(bitsText) || bits > net.length * 8) {
        throw new Error(`'${text}' is not a CIDR (expected e.g. 10.0.0.0/8 or fd00::/8)`);
      }
      allow.push({ kind: 'cidr', text, net, bits });
      continue;
    }
    const bare = parseIp(text);
    if (bare && !text.startsWith('[')) {
      allow.push({ kind: 'cidr', text, net: bare, bits: bare.length * 8 });
      continue;
    }
    // host, host:port, [v6]:port
    const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+)(?::(\d{1,5}))?$/.exec(text);
    const port = m?.[2] !== undefined ? Number(m[2]) : undefined;
    if (!m || (port !== undefined && (port < 1 || port > 65535))) {
      throw new Error(`'${text}' is neither a CIDR nor a host[:port]`);
    }
    const host = normaliseHost(m[1]!);
    allow.push(port === undefined ? { kind: 'host', text, host } : { kind: 'host', text, host, port });
  }
  return { allow };
}

function normaliseHost(h: string): string {
  const bare = h.startsWith('[') ? h.slice(1, -1) : h;
  const ip = parseIp(bare);
  return ip ? formatBytes(ip) : bare.toLowerCase().replace(/\.$/, '');
}

function formatBytes(b: Bytes): string {
  if (b.length === 4) return b.join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((b[i]! << 8) | b[i + 1]!).toString(16));
  return groups.join(':');
}

/** True when some host entry names this host (and port, if the entry has one). */
export function hostEntryMatches(policy: AddressPolicy, host: string, port: number): boolean {
  const h = normaliseHost(host);
  return policy.allow.some((e) => e.kind === 'host' && e.host === h && (e.port === undefined || e.port === port));
}

export interface AddressRefusal {
  rule: AddressRule;
  message: string;
}

/**
 * The decision for one connection: `host`:`port` is what the request asked for (the URL's host),
 * `address` one address it resolved to. `hostCovered` overrides the host-entry match (the connect
 * hook decides it per name and port before resolving). Undefined when allowed, else the rule that
 * refuses it.
 */
export function checkAddress(
  policy: AddressPolicy,
  target: { host: string; port?: number; address: string },
  opts: { hostCovered?: boolean } = {},
): AddressRefusal | undefined {
  const b = parseIp(target.address);
  if (!b) return { rule: 'reserved', message: `'${target.address}' is not an IP address` };
  const rule = classifyBytes(b);
  if (rule === 'public') return undefined;
  const name = target.port === undefined ? target.host : `${target.host}:${target.port}`;
  const what = target.host === target.address ? name : `${name} (resolved to ${target.address})`;
  if (NEVER.has(rule)) {
    return { rule, message: `registry address ${what} is ${ADDRESS_RULE_TEXT[rule]} (rule: ${rule}); it is never connectable` };
  }
  const inner = embeddedV4(b) ?? b;
  if (policy.allow.some((e) => e.kind === 'cidr' && (inPrefix(b, e.net, e.bits) || inPrefix(inner, e.net, e.bits)))) return undefined;
  const covered = opts.hostCovered ?? (target.port !== undefined && hostEntryMatches(policy, target.host, target.port));
  if (HOST_ENTRY_OPENS.has(rule) && covered) return undefined;
  const how =
    rule === 'link-local' || rule === 'metadata'
      ? `an admin can allow it only by its CIDR in BERTH_REGISTRY_ALLOW_PRIVATE`
      : `an admin can allow it by adding '${target.port === undefined ? `${name}[:port]` : name}' or its CIDR to BERTH_REGISTRY_ALLOW_PRIVATE`;
  return { rule, message: `registry address ${what} is ${ADDRESS_RULE_TEXT[rule]} (rule: ${rule}) and is not allowed; ${how}` };
}

/**
 * The allow-list from its environment form (comma-separated; unset → DEFAULT_REGISTRY_ALLOW, empty →
 * nothing non-public allowed). Throws an Error naming the first bad entry.
 */
export function allowListFromEnv(value: string | undefined): string[] {
  const entries = value === undefined ? [...DEFAULT_REGISTRY_ALLOW] : value.split(',').map((x) => x.trim()).filter(Boolean);
  parseAllowList(entries);
  return entries;
}

/** `BERTH_REGISTRY_ALLOW_PRIVATE` as a config field (api and agent): parsed by `allowListFromEnv`, a bad entry named at boot. */
export const registryAllowListEnv = () =>
  z
    .string()
    .optional()
    .transform((s, ctx) => {
      try {
        return allowListFromEnv(s);
      } catch (e) {
        ctx.addIssue({ code: 'custom', message: (e as Error).message });
        return z.NEVER;
      }
    });
