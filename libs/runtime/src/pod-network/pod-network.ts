/**
 * A node's side of the pod network, programmed from each network-sync state (libs/contracts):
 * - ip forwarding on, the CNI bridge present with its gateway address (the node's subnet's .1);
 * - host-gw: `ip route replace <peer subnet> via <peer underlay>` for every peer; wireguard: a
 *   WireGuard interface (kernel module, else wireguard-go) with one peer per node (allowed-ips =
 *   its subnet, endpoint = underlay:port) and routes to the peers' subnets through it;
 * - routes it added are tagged (`proto`, `metric`), so it removes only its own, and only inside the
 *   cluster range;
 * - masquerade (own nat chain) of pod traffic that leaves the cluster range, never pod → pod.
 * The last state is kept in the data dir and re-applied at start; an older state than the last
 * applied one is ignored. Every command goes through `exec`, so a test can run it inside a network
 * namespace (`ip netns exec`).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseNodeCommand, type NetworkSyncJob } from '@berth/contracts';
import { execFile, type ExecResult } from '@berth/oci';
import { cidrWithin, desiredNetwork, podGatewayOf, parseWgDump, planPeers, planRoutes, staleBridgeAddresses, type PodRoute } from './plan';

export type Exec = (file: string, args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv }) => Promise<ExecResult>;

export interface PodNetworkOptions {
  /** This node's pod subnet (from registration). */
  podCidr: string;
  /** The CNI bridge the node's replicas sit on; created here (gateway .1) when missing. */
  bridge: string;
  /** Agent-owned directory: WireGuard private key (0600) and the last applied state. */
  dataDir: string;
  /** Name of the WireGuard interface (wireguard mode). */
  wireguardInterface?: string;
  /** UDP port the WireGuard interface listens on. */
  wireguardPort?: number;
  /** Route tag: `proto` number of every route this node adds (default 188). */
  routeProto?: number;
  /** Route tag: metric of every route this node adds (default 1088; a directly connected route wins). */
  routeMetric?: number;
  exec?: Exec;
  log?: { info(o: object, msg: string): void; warn(o: object, msg: string): void };
}

export interface PodNetworkApplied {
  applied: boolean;
  added: string[];
  removed: string[];
  skipped: { node: string; why: string }[];
  errors: string[];
}

const quietLog = { info: () => undefined, warn: () => undefined };

/** The nat chain a node's masquerade rule lives in: one per bridge, so agents sharing a host keep theirs apart. */
export const masqueradeChainFor = (bridge: string): string => `BERTH-MASQ-${createHash('sha256').update(bridge).digest('hex').slice(0, 8)}`;

export class PodNetwork {
  readonly podCidr: string;
  readonly bridge: string;
  readonly wgInterface: string;
  readonly wgPort: number;
  readonly proto: number;
  readonly metric: number;
  readonly natChain: string;
  private readonly exec: Exec;
  private readonly log: NonNullable<PodNetworkOptions['log']>;
  private chain: Promise<unknown> = Promise.resolve();
  private lastComputedAt = -Infinity;

  constructor(private readonly o: PodNetworkOptions) {
    this.podCidr = o.podCidr;
    this.bridge = o.bridge;
    this.wgInterface = o.wireguardInterface ?? 'berthwg0';
    this.wgPort = o.wireguardPort ?? 51820;
    this.proto = o.routeProto ?? 188;
    this.metric = o.routeMetric ?? 1088;
    // One chain per bridge: several agents on one host (tests) keep separate rules.
    this.natChain = masqueradeChainFor(o.bridge);
    this.exec = o.exec ?? ((f, a, x) => execFile(f, a, x));
    this.log = o.log ?? quietLog;
    if (this.wgInterface.length > 15) throw new Error(`WireGuard interface name ${this.wgInterface} is longer than 15 characters`);
  }

  private get stateFile(): string {
    return path.join(this.o.dataDir, 'network-state.json');
  }
  private get keyFile(): string {
    return path.join(this.o.dataDir, 'wireguard.key');
  }

  /**
   * The node's WireGuard public key, generating the key pair on first use (private key 0600 in the
   * data dir; it never leaves the node).
   */
  async wireguardPublicKey(): Promise<string> {
    fs.mkdirSync(this.o.dataDir, { recursive: true, mode: 0o700 });
    if (!fs.existsSync(this.keyFile)) {
      const priv = (await this.must('wg', ['genkey'])).trim();
      const tmp = `${this.keyFile}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, `${priv}\n`, { mode: 0o600 });
      fs.chmodSync(tmp, 0o600);
      fs.renameSync(tmp, this.keyFile);
    }
    const priv = fs.readFileSync(this.keyFile, 'utf8');
    return (await this.must('wg', ['pubkey'], { input: priv })).trim();
  }

  /** Re-applies the state kept from the last run (agent start), if any. */
  async restore(): Promise<PodNetworkApplied | null> {
    let saved: NetworkSyncJob;
    try {
      const cmd = parseNodeCommand(JSON.parse(fs.readFileSync(this.stateFile, 'utf8')));
      if (cmd.kind !== 'network-sync') return null;
      saved = cmd;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn({ err: (e as Error).message }, 'saved network state unreadable; waiting for the next sync');
      return null;
    }
    return this.apply(saved);
  }

  /** Applies a state (serialised: one at a time); an older state than the newest applied is ignored. */
  apply(state: NetworkSyncJob): Promise<PodNetworkApplied> {
    const run = this.chain.then(() => this.applyNow(state));
    this.chain = run.catch(() => undefined);
    return run;
  }

  private async applyNow(state: NetworkSyncJob): Promise<PodNetworkApplied> {
    const out: PodNetworkApplied = { applied: false, added: [], removed: [], skipped: [], errors: [] };
    const saved = this.savedComputedAt();
    if (state.computedAt < Math.max(this.lastComputedAt, saved)) return out;
    this.lastComputedAt = state.computedAt;
    const note = (what: string) => (e: unknown) => void out.errors.push(`${what}: ${(e as Error).message}`);

    // Through a shell, not sysctl(8) (procps may be missing); /proc/sys/net is the caller's namespace's.
    await this.must('sh', ['-c', 'echo 1 > /proc/sys/net/ipv4/ip_forward']).catch(note('ip_forward'));
    const gw = podGatewayOf(this.podCidr);
    await this.ensureBridge(gw).catch(note(`bridge ${this.bridge}`));
    const local = await this.localAddresses();
    const desired = desiredNetwork(state, { podCidr: this.podCidr, localAddresses: local, wireguardInterface: this.wgInterface });
    out.skipped = desired.skipped;

    if (state.mode === 'wireguard') {
      await this.ensureWireguard()
        .then(() => this.syncPeers(desired.peers))
        .catch(note(`wireguard ${this.wgInterface}`));
    } else {
      await this.removeWireguard().catch(note(`remove ${this.wgInterface}`));
    }

    const current = await this.ourRoutes();
    const plan = planRoutes(desired.routes, current, state.clusterCidr);
    // wireguard: this host's own traffic to remote pods leaves from its pod gateway address, so the
    // peer accepts it (allowed-ips = this node's subnet) and the answer comes back through the tunnel.
    // host-gw: from its underlay address (an infrastructure address for tenant isolation, like the
    // gateway's), answered over the underlay.
    const src = state.mode === 'wireguard' && local.has(gw.address) ? gw.address : null;
    for (const r of plan.replace) {
      const args = ['route', 'replace', r.dst, ...(r.via ? ['via', r.via] : ['dev', r.dev!]), 'proto', String(this.proto), 'metric', String(this.metric)];
      if (src) args.push('src', src);
      await this.must('ip', args).then(
        () => out.added.push(r.dst),
        note(`route ${r.dst}`),
      );
    }
    for (const r of plan.remove) {
      await this.must('ip', ['route', 'del', r.dst, 'proto', String(this.proto), 'metric', String(this.metric)]).then(
        () => out.removed.push(r.dst),
        note(`remove route ${r.dst}`),
      );
    }
    await this.ensureMasquerade(state.clusterCidr).catch(note('masquerade'));
    out.applied = true;
    this.save(state);
    if (out.errors.length > 0) this.log.warn({ errors: out.errors, computedAt: state.computedAt }, 'pod network applied with errors');
    else if (out.added.length + out.removed.length > 0) this.log.info({ added: out.added, removed: out.removed, skipped: out.skipped.length }, 'pod network routes changed');
    return out;
  }

  /**
   * Removes what this node added: its routes (those inside the cluster range of the last state it
   * applied: agents of other clusters on the host keep theirs), the WireGuard interface, the
   * masquerade chain, the saved state.
   */
  async teardown(): Promise<void> {
    const cluster = this.savedClusterCidr();
    if (cluster) {
      for (const r of await this.ourRoutes()) {
        if (cidrWithin(r.dst, cluster)) await this.exec('ip', ['route', 'del', r.dst, 'proto', String(this.proto), 'metric', String(this.metric)]);
      }
    }
    await this.removeWireguard().catch(() => undefined);
    await this.exec('iptables', ['-t', 'nat', '-D', 'POSTROUTING', '-j', this.natChain]);
    await this.exec('iptables', ['-t', 'nat', '-F', this.natChain]);
    await this.exec('iptables', ['-t', 'nat', '-X', this.natChain]);
    fs.rmSync(this.stateFile, { force: true });
    this.lastComputedAt = -Infinity;
  }

  // ---------------------------------------------------------------- pieces

  private async must(file: string, args: string[], opts?: { input?: string; env?: NodeJS.ProcessEnv }): Promise<string> {
    const r = await this.exec(file, args, opts);
    if (r.code !== 0) throw new Error(`${file} ${args.join(' ')}: ${(r.stderr || r.stdout).trim() || `exit ${r.code}`}`);
    return r.stdout;
  }

  private savedComputedAt(): number {
    try {
      const v = (JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as { computedAt?: unknown }).computedAt;
      return typeof v === 'number' ? v : -Infinity;
    } catch {
      return -Infinity;
    }
  }

  private savedClusterCidr(): string | null {
    try {
      const v = (JSON.parse(fs.readFileSync(this.stateFile, 'utf8')) as { clusterCidr?: unknown }).clusterCidr;
      return typeof v === 'string' ? v : null;
    } catch {
      return null;
    }
  }

  private save(state: NetworkSyncJob): void {
    fs.mkdirSync(this.o.dataDir, { recursive: true, mode: 0o700 });
    const tmp = `${this.stateFile}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(state));
    fs.renameSync(tmp, this.stateFile);
  }

  private async localAddresses(): Promise<Set<string>> {
    const text = await this.must('ip', ['-4', '-j', 'addr', 'show']);
    const links = JSON.parse(text || '[]') as { addr_info?: { local?: string }[] }[];
    return new Set(links.flatMap((l) => (l.addr_info ?? []).map((a) => a.local).filter((a): a is string => !!a)));
  }

  /** The bridge with the subnet's gateway address, up (the CNI bridge plugin then reuses it). */
  private async ensureBridge(gw: { address: string; prefix: number }): Promise<void> {
    const show = await this.exec('ip', ['-4', '-j', 'addr', 'show', 'dev', this.bridge]);
    if (show.code !== 0) await this.must('ip', ['link', 'add', 'name', this.bridge, 'type', 'bridge']);
    const links = show.code === 0 ? (JSON.parse(show.stdout || '[]') as { addr_info?: { local?: string; prefixlen?: number }[] }[]) : [];
    const have = links.flatMap((l) => l.addr_info ?? []).filter((a): a is { local: string; prefixlen: number } => !!a.local && a.prefixlen !== undefined);
    for (const stale of staleBridgeAddresses(have, this.podCidr)) {
      await this.must('ip', ['addr', 'del', stale, 'dev', this.bridge]);
      this.log.warn({ bridge: this.bridge, removed: stale, podCidr: this.podCidr }, 'removed a bridge address that clashes with the node subnet');
    }
    if (!have.some((a) => a.local === gw.address && a.prefixlen === gw.prefix)) {
      await this.must('ip', ['addr', 'add', `${gw.address}/${gw.prefix}`, 'dev', this.bridge]);
    }
    await this.must('ip', ['link', 'set', this.bridge, 'up']);
  }

  private async ourRoutes(): Promise<PodRoute[]> {
    const text = await this.must('ip', ['-4', '-j', 'route', 'show', 'proto', String(this.proto)]);
    const rows = JSON.parse(text || '[]') as { dst: string; gateway?: string; dev?: string; metric?: number }[];
    return rows
      .filter((r) => (r.metric ?? 0) === this.metric)
      .map((r) => ({ dst: r.dst.includes('/') ? r.dst : `${r.dst}/32`, via: r.gateway ?? null, dev: r.gateway ? null : (r.dev ?? null) }));
  }

  private async ensureWireguard(): Promise<void> {
    const exists = (await this.exec('ip', ['link', 'show', 'dev', this.wgInterface])).code === 0;
    if (!exists) {
      const kernel = await this.exec('ip', ['link', 'add', 'dev', this.wgInterface, 'type', 'wireguard']);
      if (kernel.code !== 0) {
        // No kernel module: the userspace implementation (a TUN device; it daemonizes itself).
        // Without LOG_LEVEL its daemon detaches from our stdout/stderr (else the call would never end).
        await this.must('wireguard-go', [this.wgInterface], { env: { ...process.env, LOG_LEVEL: '' } });
        this.log.info({ iface: this.wgInterface }, 'WireGuard: kernel module unavailable, using wireguard-go');
      }
    }
    await this.wireguardPublicKey();
    await this.must('wg', ['set', this.wgInterface, 'listen-port', String(this.wgPort), 'private-key', this.keyFile]);
    await this.must('ip', ['link', 'set', 'dev', this.wgInterface, 'mtu', '1420', 'up']);
  }

  private async syncPeers(desired: Parameters<typeof planPeers>[0]): Promise<void> {
    const current = parseWgDump(await this.must('wg', ['show', this.wgInterface, 'dump'])).peers;
    const plan = planPeers(desired, current);
    for (const key of plan.remove) await this.must('wg', ['set', this.wgInterface, 'peer', key, 'remove']);
    for (const p of plan.set) {
      const args = ['set', this.wgInterface, 'peer', p.publicKey, 'allowed-ips', p.allowedIps.join(','), 'persistent-keepalive', '25'];
      if (p.endpoint) args.push('endpoint', p.endpoint);
      await this.must('wg', args);
    }
  }

  private async removeWireguard(): Promise<void> {
    if ((await this.exec('ip', ['link', 'show', 'dev', this.wgInterface])).code !== 0) return;
    await this.must('ip', ['link', 'del', 'dev', this.wgInterface]);
  }

  /** nat chain: pod traffic to outside the cluster range leaves with the node's address. */
  private async ensureMasquerade(clusterCidr: string): Promise<void> {
    const want = [`-A ${this.natChain} -s ${this.podCidr} ! -d ${clusterCidr} -j MASQUERADE`];
    const listed = await this.exec('iptables', ['-t', 'nat', '-S', this.natChain]);
    if (listed.code !== 0) await this.must('iptables', ['-t', 'nat', '-N', this.natChain]);
    const have = listed.code === 0 ? listed.stdout.split('\n').filter((l) => l.startsWith('-A ')) : [];
    if (have.join('\n') !== want.join('\n')) {
      await this.must('iptables', ['-t', 'nat', '-F', this.natChain]);
      await this.must('iptables', ['-t', 'nat', '-A', this.natChain, '-s', this.podCidr, '!', '-d', clusterCidr, '-j', 'MASQUERADE']);
    }
    if ((await this.exec('iptables', ['-t', 'nat', '-C', 'POSTROUTING', '-j', this.natChain])).code !== 0) {
      await this.must('iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-j', this.natChain]);
    }
  }
}
