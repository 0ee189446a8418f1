/**
 * Container networking through the standard CNI plugins, invoked directly (no libcni):
 * one network namespace per container (`ip netns add <prefix><id>`, so leaks are easy to find),
 * `loopback` for lo and `bridge` + `host-local` for eth0 on a bridge the agent owns. host-local keeps
 * its leases under `dataDir`, one file per address holding the container id, which is how `gc`
 * finds addresses whose container is gone.
 */
import { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { execFile, execOk } from '@berth/oci';

export interface CniOptions {
  /** Directory holding the plugin binaries (CNI_PATH). */
  pluginDir?: string;
  /** Linux bridge name (≤ 15 chars). */
  bridge?: string;
  subnet?: string;
  /** Agent-owned directory for host-local leases. */
  dataDir: string;
  netnsPrefix?: string;
  networkName?: string;
  /**
   * Leave IPv6 on inside containers (default off): pods are IPv4-only, and their link-local fe80::
   * addresses would otherwise be a path around tenant isolation (pod → pod, pod → host).
   */
  ipv6?: boolean;
}

export interface NetworkAttachment {
  netnsName: string;
  netnsPath: string;
  address: string;
  gateway: string | null;
}

export class CniError extends Error {
  constructor(
    readonly plugin: string,
    readonly command: string,
    message: string,
  ) {
    super(`CNI ${plugin} ${command}: ${message}`);
    this.name = 'CniError';
  }
}

const NETNS_DIR = '/run/netns';

export class CniNetwork {
  readonly pluginDir: string;
  readonly bridge: string;
  readonly subnet: string;
  readonly dataDir: string;
  readonly netnsPrefix: string;
  readonly networkName: string;
  readonly ipv6: boolean;

  constructor(opts: CniOptions) {
    this.pluginDir = opts.pluginDir ?? '/usr/lib/cni';
    this.bridge = opts.bridge ?? 'berth0';
    this.subnet = opts.subnet ?? '10.88.0.0/16';
    this.dataDir = opts.dataDir;
    this.netnsPrefix = opts.netnsPrefix ?? 'berth-';
    this.networkName = opts.networkName ?? 'berth';
    this.ipv6 = opts.ipv6 ?? false;
    if (this.bridge.length > 15) throw new Error(`bridge name ${this.bridge} is longer than 15 characters`);
    if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(this.subnet)) throw new Error(`subnet ${this.subnet} is not an IPv4 CIDR`);
  }

  netnsName(id: string): string {
    return `${this.netnsPrefix}${id}`;
  }
  netnsPath(id: string): string {
    return join(NETNS_DIR, this.netnsName(id));
  }

  private bridgeConfig() {
    return {
      cniVersion: '1.0.0',
      name: this.networkName,
      type: 'bridge',
      bridge: this.bridge,
      isGateway: true,
      // A default route through the bridge: without it a replica reaches only its own node's subnet,
      // never another node's replicas (pod network across hosts) nor anything else.
      isDefaultGateway: true,
      ipMasq: false,
      hairpinMode: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: this.subnet }]], dataDir: join(this.dataDir, 'ipam') },
    };
  }
  private loopbackConfig() {
    return { cniVersion: '1.0.0', name: `${this.networkName}-lo`, type: 'loopback' };
  }

  /** Creates the namespace and attaches it; on failure nothing is left behind. */
  async add(id: string): Promise<NetworkAttachment> {
    await this.createNamespace(id);
    try {
      return await this.attach(id);
    } catch (e) {
      await this.del(id).catch(() => undefined);
      throw e;
    }
  }

  /** Step 1 of add: the empty namespace (a container may already join it while `attach` runs). */
  async createNamespace(id: string): Promise<{ netnsName: string; netnsPath: string }> {
    await execOk('ip', ['netns', 'add', this.netnsName(id)]);
    if (!this.ipv6) {
      // Before eth0 exists, so it never gets an fe80:: address (`default` is what new interfaces inherit).
      const r = await execFile('ip', ['netns', 'exec', this.netnsName(id), 'sysctl', '-q', '-w', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1']);
      // A kernel without IPv6 has nothing to turn off.
      if (r.code !== 0 && !/No such file|cannot stat/.test(r.stderr)) {
        await execFile('ip', ['netns', 'delete', this.netnsName(id)]);
        throw new Error(`could not turn IPv6 off in ${this.netnsName(id)}: ${r.stderr.trim()}`);
      }
    }
    return { netnsName: this.netnsName(id), netnsPath: this.netnsPath(id) };
  }

  /** Step 2 of add: lo up, eth0 on the bridge with an address from host-local. */
  async attach(id: string): Promise<NetworkAttachment> {
    const netnsName = this.netnsName(id);
    const netnsPath = this.netnsPath(id);
    const [, result] = await Promise.all([
      this.invoke('loopback', 'ADD', id, netnsPath, 'lo', this.loopbackConfig()),
      this.invoke('bridge', 'ADD', id, netnsPath, 'eth0', this.bridgeConfig()),
    ]);
    const ip = (result as { ips?: { address: string; gateway?: string }[] }).ips?.[0];
    if (!ip) throw new CniError('bridge', 'ADD', 'result has no IP address');
    return { netnsName, netnsPath, address: ip.address.split('/')[0], gateway: ip.gateway ?? null };
  }

  /** Detaches, releases the address and deletes the namespace. Idempotent. */
  async del(id: string): Promise<void> {
    const netnsPath = this.netnsPath(id);
    const exists = await fs
      .stat(netnsPath)
      .then(() => true)
      .catch(() => false);
    // With an empty CNI_NETNS the bridge plugin still releases the lease (the namespace is gone).
    let pluginError: unknown = null;
    await this.invoke('bridge', 'DEL', id, exists ? netnsPath : '', 'eth0', this.bridgeConfig()).catch((e) => (pluginError = e));
    // The namespace goes even when the plugin failed, so a broken plugin cannot leak namespaces.
    if (exists) {
      const r = await execFile('ip', ['netns', 'delete', this.netnsName(id)]);
      if (r.code !== 0 && !/No such file/.test(r.stderr)) throw new Error(`ip netns delete ${this.netnsName(id)}: ${r.stderr.trim()}`);
    }
    if (pluginError) throw pluginError;
  }

  /** Container ids that have a namespace under this prefix. */
  async listNamespaces(): Promise<string[]> {
    const names = await fs.readdir(NETNS_DIR).catch(() => [] as string[]);
    return names.filter((n) => n.startsWith(this.netnsPrefix)).map((n) => n.slice(this.netnsPrefix.length));
  }

  /** Addresses host-local has handed out, with the container id holding each. */
  async listLeases(): Promise<{ address: string; id: string }[]> {
    const dir = join(this.dataDir, 'ipam', this.networkName);
    const files = await fs.readdir(dir).catch(() => [] as string[]);
    const out: { address: string; id: string }[] = [];
    for (const f of files) {
      if (!/^\d+\.\d+\.\d+\.\d+$/.test(f)) continue;
      const text = await fs.readFile(join(dir, f), 'utf8').catch(() => '');
      out.push({ address: f, id: text.split(/\r?\n/)[0].trim() });
    }
    return out;
  }

  /** veth interfaces currently enslaved to the bridge. */
  async listBridgePorts(): Promise<string[]> {
    const r = await execFile('ip', ['-o', 'link', 'show', 'master', this.bridge]);
    if (r.code !== 0) return [];
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':')[1].trim().split('@')[0]);
  }

  /** Removes the bridge itself (tests and uninstall; the agent keeps it). */
  async removeBridge(): Promise<void> {
    await execFile('ip', ['link', 'delete', this.bridge, 'type', 'bridge']);
  }

  private async invoke(plugin: string, command: 'ADD' | 'DEL', id: string, netns: string, ifname: string, config: object): Promise<unknown> {
    const r = await execFile(join(this.pluginDir, plugin), [], {
      input: JSON.stringify(config),
      timeoutMs: 30_000,
      env: {
        PATH: process.env.PATH,
        CNI_COMMAND: command,
        CNI_CONTAINERID: id,
        CNI_NETNS: netns,
        CNI_IFNAME: ifname,
        CNI_PATH: this.pluginDir,
      },
    });
    if (r.code !== 0) {
      let msg = (r.stdout || r.stderr).trim();
      try {
        const e = JSON.parse(r.stdout) as { msg?: string; details?: string };
        msg = [e.msg, e.details].filter(Boolean).join(': ');
      } catch {
        /* not JSON: keep raw text */
      }
      throw new CniError(plugin, command, msg || `exit ${r.code}`);
    }
    return r.stdout.trim() ? JSON.parse(r.stdout) : null;
  }
}
