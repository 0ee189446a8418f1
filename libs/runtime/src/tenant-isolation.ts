/**
 * Tenant isolation on a node: replicas of different projects cannot open connections to each other
 * (same bridge or across hosts), replicas cannot reach the node's own addresses, other nodes'
 * underlay addresses, control-plane addresses nor link-local/metadata (169.254.0.0/16); they still
 * reach each other within their project and the outside world, and hosts (gateways, health checks)
 * still reach them.
 *
 * Everything lives in one nftables table this class owns (`inet <table>`): nothing else's rules are
 * read or touched. Pods speak IPv4 only (CniNetwork turns IPv6 off in their namespaces, so no
 * fe80:: path around these rules). Each change rewrites the table's sets, map and chains in place
 * in one nft transaction (`flush` + re-add: never `delete table`, whose hooks leave a gap a packet
 * was seen to pass through), so there is never a moment where a denied flow passes or a set is
 * half-filled. When only addresses change, only their elements are deleted and added, still in one
 * transaction. Conntrack entries are untouched, so established allowed connections survive.
 * Same-host (bridged) traffic reaches the inet `forward` hook through br_netfilter
 * (`net.bridge.bridge-nf-call-iptables=1`, set by `install()`).
 *
 * Who is a pod: an address in the cluster pod range (the sync's `clusterCidr`, plus this node's own
 * pod subnet) that is not a bridge's gateway address (`.1` of a node's pod subnet: those are hosts).
 * Pod → pod is allowed only when both addresses belong to the same project; an address in no project
 * (or claimed by two) is denied. Addresses on this node's own subnet take their project from the
 * agent's own registrations (`attached`), never from the scheduler, so a local replica is isolated
 * from its first packet whatever the sync says.
 */
import { execFile } from '@berth/oci';

/** What the agent's `network-sync` command carries (structurally the contract's `NetworkSyncJob`). */
export interface IsolationState {
  clusterCidr: string;
  peers: { podCidr: string }[];
  projects: Record<string, string[]>;
  infrastructure: string[];
  computedAt: number;
}

export interface TenantIsolationOptions {
  /** This node's pod subnet (its CNI bridge's range). */
  localPodCidr: string;
  /** The node's CNI bridge (names the table by default). */
  bridge: string;
  /** nftables table name (inet family); one per agent on a host. Default `berth_iso_<bridge>`. */
  table?: string;
  /** Run nft inside this named network namespace (tests); default: the agent's own. */
  netns?: string;
  log?: { info(o: object, m: string): void; warn(o: object, m: string): void };
}

export interface ReplicaAddress {
  replicaId: string;
  /** null: unknown project (e.g. a container started before projects were recorded): isolated from every pod. */
  projectId: string | null;
  address: string;
}

/** Link-local: cloud metadata services and friends. */
export const LINK_LOCAL = '169.254.0.0/16';

export class TenantIsolation {
  readonly table: string;
  private state: IsolationState | null = null;
  private readonly local = new Map<string, ReplicaAddress>();
  /** Project id → chain/set number, stable for the life of the process. */
  private readonly index = new Map<string, number>();
  private chain: Promise<unknown> = Promise.resolve();
  private installed = false;
  /** Project chain/set numbers present in the table (flushed, then deleted, when their project goes). */
  private present = new Set<number>();
  /** What the last commit put in the table, so the next can change only what differs (null: rewrite all). */
  private committed: { base: string; owner: Map<string, number> } | null = null;

  constructor(private readonly o: TenantIsolationOptions) {
    parseCidr(o.localPodCidr);
    this.table = o.table ?? `berth_iso_${o.bridge.replace(/[^A-Za-z0-9_]/g, '_')}`;
    if (!/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(this.table)) throw new Error(`nft table name ${this.table} is not a plain identifier`);
  }

  /** Turns on br_netfilter for the bridge's traffic and installs the rules (default deny between pods). Idempotent. */
  async install(): Promise<void> {
    await this.serial(async () => {
      await this.ensureBridgeNetfilter();
      // A previous agent's table stays in force until this one's first commit replaces its contents.
      const r = await this.exec('nft', ['list', 'table', 'inet', this.table]);
      if (r.code === 0) for (const m of r.stdout.matchAll(/^\s*(?:set|chain) p(\d+) \{/gm)) this.present.add(Number(m[1]));
      await this.commit();
      this.installed = true;
    });
  }

  /** The cluster's state from a `network-sync`; an older `computedAt` than the last one applied is ignored. */
  async apply(state: IsolationState): Promise<void> {
    await this.serial(async () => {
      if (this.state && state.computedAt < this.state.computedAt) return;
      this.state = state;
      if (!this.installed) await this.ensureBridgeNetfilter();
      await this.commit();
      this.installed = true;
      this.o.log?.info(
        { table: this.table, projects: Object.keys(state.projects).length, addresses: Object.values(state.projects).reduce((n, a) => n + a.length, 0), computedAt: state.computedAt },
        'tenant isolation applied',
      );
    });
  }

  /** A local replica's container has its address: into its project's set now (before anyone reports it). */
  async attached(r: ReplicaAddress): Promise<void> {
    await this.serial(async () => {
      // One address, one owner: a new container on a reused address replaces the old one.
      for (const [id, x] of this.local) if (x.address === r.address && id !== r.replicaId) this.local.delete(id);
      this.local.set(r.replicaId, r);
      if (this.installed) await this.commit();
    });
  }

  /** A local replica's container is about to go (its address may be handed out again after). */
  async detaching(replicaId: string): Promise<void> {
    await this.serial(async () => {
      if (!this.local.delete(replicaId)) return;
      if (this.installed) await this.commit();
    });
  }

  /** Removes the tables (uninstall, tests). */
  async uninstall(): Promise<void> {
    await this.serial(async () => {
      await this.nft(`add table inet ${this.table}\ndelete table inet ${this.table}\n`);
      this.installed = false;
      this.present.clear();
      this.committed = null;
    });
  }

  /** The nft script that brings the table to what the node should have now. */
  render(): Rendered {
    return renderRuleset({
      table: this.table,
      localPodCidr: this.o.localPodCidr,
      state: this.state,
      local: [...this.local.values()],
      index: this.index,
      present: [...this.present],
      warn: (o, m) => this.o.log?.warn(o, m),
    });
  }

  private async commit(): Promise<void> {
    const want = this.render();
    const had = this.committed;
    // Only addresses changed (a replica started or stopped, a sync moved a few): change just those
    // elements, still in one transaction; anything else rewrites the table's contents.
    if (had && had.base === want.base && want.projects.every((n) => this.present.has(n))) {
      const delta = renderDelta(this.table, had.owner, want.owner);
      try {
        if (delta) await this.nft(delta);
        this.committed = { base: want.base, owner: want.owner };
        return;
      } catch (e) {
        this.o.log?.warn({ table: this.table, err: (e as Error).message }, 'incremental isolation update failed; rewriting the table');
        this.committed = null;
      }
    }
    await this.nft(want.script);
    this.committed = { base: want.base, owner: want.owner };
    for (const n of want.projects) this.present.add(n);
    if (!want.stale.length) return;
    // Nothing refers to the emptied project chains any more: a second transaction removes them.
    await this.nft(want.stale.map((n) => `delete chain inet ${this.table} p${n}\ndelete set inet ${this.table} p${n}\n`).join(''));
    for (const n of want.stale) this.present.delete(n);
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.chain.then(fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private async nft(script: string): Promise<void> {
    const r = await this.exec('nft', ['-f', '-'], script);
    if (r.code !== 0) throw new Error(`nft (table ${this.table}) failed: ${(r.stderr || r.stdout).trim().slice(0, 2000)}`);
  }

  private async exec(file: string, args: string[], input?: string) {
    try {
      return await (this.o.netns
        ? execFile('ip', ['netns', 'exec', this.o.netns, file, ...args], { input, timeoutMs: 30_000 })
        : execFile(file, args, { input, timeoutMs: 30_000 }));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new Error(`tenant isolation needs ${file} (Debian: ${file === 'nft' ? 'nftables' : 'procps/kmod'}); install it or set BERTH_TENANT_ISOLATION=off`);
      }
      throw e;
    }
  }

  /** Bridged IPv4 must pass the inet hooks, or same-host pods would bypass every rule here. */
  private async ensureBridgeNetfilter(): Promise<void> {
    const key = 'net.bridge.bridge-nf-call-iptables';
    let r = await this.exec('sysctl', ['-n', key]);
    if (r.code !== 0) {
      await this.exec('modprobe', ['br_netfilter']);
      r = await this.exec('sysctl', ['-n', key]);
    }
    if (r.code === 0 && r.stdout.trim() === '1') return;
    const w = await this.exec('sysctl', ['-w', `${key}=1`]);
    if (w.code !== 0) {
      throw new Error(`tenant isolation needs br_netfilter with ${key}=1 (same-host pod traffic would bypass the rules otherwise): ${(w.stderr || r.stderr).trim()}`);
    }
  }
}

// ---------------------------------------------------------------- pure rendering

export interface RenderInput {
  table: string;
  localPodCidr: string;
  state: IsolationState | null;
  local: ReplicaAddress[];
  /** Project id → number (filled in as projects appear; kept by the caller across renders). */
  index: Map<string, number>;
  /** Project numbers whose chain and set exist in the table now. */
  present?: number[];
  warn?: (o: object, msg: string) => void;
}

/** Project id → its pod addresses cluster-wide, local registrations authoritative for the local subnet. */
export function projectMembers(input: Pick<RenderInput, 'localPodCidr' | 'state' | 'local' | 'warn'>): Map<string, string[]> {
  const localNet = parseCidr(input.localPodCidr);
  const owner = new Map<string, string | null>(); // address → project (null: conflicting claims)
  for (const [projectId, addrs] of Object.entries(input.state?.projects ?? {})) {
    for (const a of addrs) {
      if (inRange(ipToInt(a), localNet)) continue; // the agent knows its own replicas
      const prev = owner.get(a);
      if (prev === undefined) owner.set(a, projectId);
      else if (prev !== projectId) owner.set(a, null);
    }
  }
  for (const r of input.local) {
    if (!inRange(ipToInt(r.address), localNet)) input.warn?.({ replicaId: r.replicaId, address: r.address }, 'replica address outside the node pod subnet; isolated from every pod');
    owner.set(r.address, r.projectId);
  }
  const out = new Map<string, string[]>();
  for (const [a, p] of owner) {
    if (p === null) continue;
    if (!out.has(p)) out.set(p, []);
    out.get(p)!.push(a);
  }
  const conflicts = [...owner].filter(([, p]) => p === null).map(([a]) => a);
  if (conflicts.length) input.warn?.({ addresses: conflicts.slice(0, 20) }, 'addresses claimed by several projects or of unknown project: isolated from every pod');
  for (const list of out.values()) list.sort((x, y) => ipToInt(x) - ipToInt(y));
  return out;
}

export interface Rendered {
  /** One nft transaction bringing the whole table to the desired state. */
  script: string;
  /** Project numbers it fills. */
  projects: number[];
  /** Numbers present before whose project is gone (emptied by `script`, to be deleted in a second transaction). */
  stale: number[];
  /** Pod address → its project's number (the `owner` map). */
  owner: Map<string, number>;
  /** The cluster, gateway and infrastructure sets, as one comparable string. */
  base: string;
}

/**
 * The desired table: every set, map and chain is declared (idempotent `add`), flushed and filled
 * anew in one script.
 */
export function renderRuleset(input: RenderInput): Rendered {
  const { table } = input;
  const state = input.state;
  const cluster = mergeRanges([input.localPodCidr, ...(state ? [state.clusterCidr] : [])]);
  const gateways = [...new Set([input.localPodCidr, ...(state?.peers.map((p) => p.podCidr) ?? [])].map(gatewayOf))].sort((a, b) => ipToInt(a) - ipToInt(b));
  const infra = mergeRanges([LINK_LOCAL, ...(state?.infrastructure ?? [])]);
  const members = projectMembers(input);
  for (const p of [...members.keys()].sort()) if (!input.index.has(p)) input.index.set(p, Math.max(0, ...input.index.values()) + 1);
  const projects = [...members.entries()].map(([p, addrs]) => ({ p, n: input.index.get(p)!, addrs })).sort((a, b) => a.n - b.n);
  const live = new Set(projects.map((x) => x.n));
  const stale = [...new Set(input.present ?? [])].filter((n) => !live.has(n)).sort((a, b) => a - b);

  const T = `inet ${table}`;
  const L: string[] = [`add table ${T}`];
  const fill = (kind: 'set' | 'map', name: string, decl: string, elements: string[]) => {
    L.push(`add ${kind} ${T} ${name} { ${decl} }`, `flush ${kind} ${T} ${name}`);
    if (elements.length) L.push(`add element ${T} ${name} { ${elements.join(', ')} }`);
  };
  const chain = (name: string, rules: string[], base?: string) => {
    L.push(base ? `add chain ${T} ${name} { ${base} }` : `add chain ${T} ${name}`, `flush chain ${T} ${name}`);
    for (const r of rules) L.push(`add rule ${T} ${name} ${r}`);
  };
  fill('set', 'cluster', 'type ipv4_addr; flags interval;', cluster);
  fill('set', 'gateways', 'type ipv4_addr;', gateways);
  fill('set', 'infra', 'type ipv4_addr; flags interval;', infra);
  const owner: string[] = [];
  for (const { p, n, addrs } of projects) {
    L.push(`# project ${sanitizeComment(p)}`);
    fill('set', `p${n}`, 'type ipv4_addr;', addrs);
    chain(`p${n}`, [`ip daddr @p${n} accept`, 'drop']);
    for (const a of addrs) owner.push(`${a} : goto p${n}`);
  }
  for (const n of stale) {
    L.push(`# project gone`);
    fill('set', `p${n}`, 'type ipv4_addr;', []);
    chain(`p${n}`, ['drop']);
  }
  fill('map', 'owner', 'type ipv4_addr : verdict;', owner);
  // Pod → pod: the source's project chain checks the destination is in the same project.
  chain('pod_to_pod', ['ip saddr vmap @owner', 'drop']);
  chain('from_pod', [
    'ip daddr @cluster ip daddr != @gateways goto pod_to_pod',
    // Replies to connections a host opened (the gateway, health checks) pass; a pod opens none.
    'ct state established,related accept',
    'ip daddr @gateways drop',
    'ip daddr @infra drop',
  ]);
  chain('forward', ['ip saddr @cluster ip saddr != @gateways jump from_pod'], 'type filter hook forward priority filter - 10; policy accept;');
  chain(
    'input',
    ['ip saddr @cluster ip saddr != @gateways ct state established,related accept', 'ip saddr @cluster ip saddr != @gateways drop'],
    'type filter hook input priority filter - 10; policy accept;',
  );
  const ownerMap = new Map(projects.flatMap(({ n, addrs }) => addrs.map((a) => [a, n] as const)));
  return { script: L.join('\n') + '\n', projects: [...live], stale, owner: ownerMap, base: JSON.stringify([cluster, gateways, infra]) };
}

/**
 * One nft transaction moving addresses between projects (`before` → `after`, address → project
 * number; the project chains and sets must exist); '' when nothing changed.
 */
export function renderDelta(table: string, before: Map<string, number>, after: Map<string, number>): string {
  const T = `inet ${table}`;
  const L: string[] = [];
  for (const [a, n] of before) if (after.get(a) !== n) L.push(`delete element ${T} owner { ${a} }`, `delete element ${T} p${n} { ${a} }`);
  for (const [a, n] of after) if (before.get(a) !== n) L.push(`add element ${T} p${n} { ${a} }`, `add element ${T} owner { ${a} : goto p${n} }`);
  return L.length ? L.join('\n') + '\n' : '';
}

function sanitizeComment(s: string): string {
  return s.replace(/[^A-Za-z0-9_.:-]/g, '_').slice(0, 80);
}

// ---------------------------------------------------------------- IPv4 helpers

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function ipToInt(ip: string): number {
  const m = IPV4.exec(ip);
  if (!m || m.slice(1).some((x) => Number(x) > 255)) throw new Error(`${ip} is not an IPv4 address`);
  return ((Number(m[1]) << 24) >>> 0) + (Number(m[2]) << 16) + (Number(m[3]) << 8) + Number(m[4]);
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** `a.b.c.d/n` or a bare address → inclusive [first, last]. */
export function parseCidr(cidr: string): [number, number] {
  const [ip, bits = '32'] = cidr.split('/');
  const n = Number(bits);
  if (!/^\d{1,2}$/.test(bits) || n > 32) throw new Error(`${cidr} is not an IPv4 CIDR`);
  const size = 2 ** (32 - n);
  const start = Math.floor(ipToInt(ip) / size) * size;
  return [start, start + size - 1];
}

function inRange(x: number, [a, b]: [number, number]): boolean {
  return x >= a && x <= b;
}

/** The bridge's own address in a pod subnet (host-local's default gateway: the first host). */
export function gatewayOf(cidr: string): string {
  return intToIp(parseCidr(cidr)[0] + 1);
}

/** Addresses and CIDRs → sorted, non-overlapping nft interval elements (nft refuses overlaps). */
export function mergeRanges(items: string[]): string[] {
  const ranges = items.map(parseCidr).sort((x, y) => x[0] - y[0]);
  const merged: [number, number][] = [];
  for (const r of ranges) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  return merged.map(([a, b]) => (a === b ? intToIp(a) : `${intToIp(a)}-${intToIp(b)}`));
}
