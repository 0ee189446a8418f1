import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { dropDatabase } from '@berth/db/migrate';
import { TEST_REDIS_URL, TEST_REGISTRY } from './env';
import { claimSlot, startSystem, type AgentProcess, type RunningSystem, type SystemOptions } from './system';

/**
 * A multi-host test lab on one kernel: every "host" is a network namespace the lab creates, with a
 * veth into a lab bridge in the root namespace and its own underlay address; each worker host runs
 * its own agent process inside its namespace (own data dir, runc root, container netns prefix, CNI
 * bridge), and the gateway runs in a host namespace of its own. The control plane (api, scheduler,
 * Postgres, Redis, registry) stays in the root namespace: the api listens on the lab bridge's
 * address, and Redis and the registry (bound to 127.0.0.1) are reached there through TCP forwarders
 * running in the test process.
 *
 * Addresses of lab slot S (0..7, one per running lab, a lock file per slot with its owner's PID):
 *   underlay 10.250.S.0/24: bridge `blSbr` .1, worker host i (1..n) .(10+i), the gateway host .100
 *   pod range 10.(232+S).0.0/16: host i's pod subnet 10.(232+S).i.0/24 (`staticRoutes`)
 * Names: host namespaces `blShi` / `blSgw`, root-side veths the same, nodes `blShi-<run id>`.
 *
 * Pod routes between hosts: with `staticRoutes` (the default until the control plane assigns pod
 * subnets and agents program routes from `network-sync`), the lab gives each agent its pod subnet
 * (BERTH_CNI_SUBNET) and programs host-gw routes (`<subnet> via <underlay>`) in every host namespace,
 * the gateway's included. Without it the agents get nothing but the cluster settings, an agent in the
 * gateway namespace that takes no replicas (BERTH_NODE_SCHEDULABLE=false) joins the pod network, and
 * the routes (or WireGuard) are the platform's own.
 *
 * `stop()` (and the start of a later lab on the same slot, when a crashed run left things behind)
 * removes everything by name prefix: processes in the lab namespaces, containers, container network
 * namespaces, cgroups, overlay mounts, host namespaces, veths, the bridge and the forwarders; a
 * crashed run's api and scheduler, database and data dir through the record it kept beside its slot.
 */
export type LabMode = 'host-gw' | 'wireguard';

export interface LabOptions {
  /** Worker hosts (each runs an agent). Default 3. */
  hosts?: number;
  mode?: LabMode;
  /** The lab assigns pod subnets and programs host-gw routes itself. Default true. */
  staticRoutes?: boolean;
  /** Passed to startSystem (extra env for every process / per app). */
  env?: SystemOptions['env'];
  appEnv?: SystemOptions['appEnv'];
}

export interface LabHost {
  /** Network namespace (under /run/netns) and root-side veth name. */
  netns: string;
  /** Underlay address (on the lab bridge). */
  underlay: string;
  /** Node name of the agent running there (null: no agent). */
  nodeName: string | null;
  /** Pod subnet when the lab assigned it (`staticRoutes`). */
  podCidr: string | null;
  agent: AgentProcess | null;
}

export interface Lab {
  sys: RunningSystem;
  slot: number;
  mode: LabMode;
  /** The lab bridge's address: where hosts reach the api, Redis and the registry. */
  controlAddress: string;
  clusterCidr: string;
  hosts: LabHost[];
  gateway: LabHost;
  /** A fixture image reference hosts can pull (`berth-fixtures/<nameTag>` through the registry forwarder). */
  image(nameTag: string): string;
  /** Request to the gateway (in its namespace) for `<service>.<project>.localhost`. */
  get(service: string, path?: string, timeoutMs?: number, project?: string): Promise<{ status: number; body: string }>;
  /** Takes a host's underlay link down (its root-side veth) / back up. */
  cutLink(host: LabHost): Promise<void>;
  restoreLink(host: LabHost): Promise<void>;
  /** Runs a command inside a host namespace; resolves with stdout. */
  exec(host: LabHost, cmd: string, args: string[]): Promise<string>;
  /** Removes everything; returns what the safety net had to remove (`container …` entries are leaks). */
  stop(): Promise<string[]>;
}

const run = promisify(execFile);
const sh = async (cmd: string, args: string[]) => (await run(cmd, args)).stdout;
const quiet = (cmd: string, args: string[]) => run(cmd, args).then(
  (r) => r.stdout,
  () => '',
);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const httpAgent = new http.Agent({ keepAlive: true, maxSockets: 64 });

/** GET through a gateway with an explicit Host header. */
export function gatewayGet(url: string, host: string, path = '/', timeoutMs = 10_000): Promise<{ status: number; body: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: Number(u.port), path, headers: { host }, agent: httpAgent, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${host}${path}: no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** A TCP forwarder listening on `listen` that connects each client to `target`. */
function forwarder(listenHost: string, listenPort: number, targetHost: string, targetPort: number): Promise<{ close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, targetHost);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => undefined);
    }
    client.pipe(upstream).pipe(client);
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(listenPort, listenHost, () =>
      resolve({
        close: () =>
          new Promise<void>((r) => {
            for (const s of sockets) s.destroy();
            server.close(() => r());
          }),
      }),
    );
  });
}

/**
 * What a running lab records beside its slot lock so that the next lab on the slot can remove a
 * crashed run's control plane too (its api and scheduler run in the root namespace, outside the
 * host namespaces the sweep empties): their PIDs, the database and the data dir.
 */
interface LabRecord {
  pids: number[];
  databaseUrl: string;
  dataDir: string;
}
const recordFile = (slot: number) => path.join(os.tmpdir(), 'berth-test-lab', `${slot}.json`);

async function sweepRecord(slot: number): Promise<string[]> {
  const file = recordFile(slot);
  let rec: LabRecord;
  try {
    rec = JSON.parse(fs.readFileSync(file, 'utf8')) as LabRecord;
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const pid of rec.pids) {
    // Only a process that still runs one of our apps (the PID may have been reused since).
    const cmd = fs.existsSync(`/proc/${pid}/cmdline`) ? fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8') : '';
    if (!/apps\/(api|scheduler|gateway|agent)\/src\/main\.ts/.test(cmd)) continue;
    try {
      process.kill(pid, 'SIGKILL');
      removed.push(`process ${pid}`);
    } catch {
      /* gone */
    }
  }
  await dropDatabase(rec.databaseUrl).then(
    () => removed.push(`database ${new URL(rec.databaseUrl).pathname.slice(1)}`),
    () => undefined,
  );
  if (rec.dataDir.startsWith(os.tmpdir()) && fs.existsSync(rec.dataDir)) {
    fs.rmSync(rec.dataDir, { recursive: true, force: true });
    removed.push(`dir ${rec.dataDir}`);
  }
  fs.rmSync(file, { force: true });
  return removed;
}

/** Names the lab of slot `slot` creates: namespaces and veths `bl<slot>h<i>` / `bl<slot>gw`, nodes `bl<slot>h<i>-<id>`. */
const labName = (slot: number) => new RegExp(`^bl${slot}(h\\d+|gw|br)$`);
const nodeName = (slot: number) => new RegExp(`^bl${slot}(h\\d+|gw)-[0-9a-f]+$`);

/**
 * Removes whatever a lab of this slot left behind (a crashed run's, or this run's after its agents
 * stopped): processes inside its host namespaces, runc containers and their network namespaces,
 * cgroups and overlay mounts of its agents, host namespaces, veths and the bridge. `hosts: false`
 * keeps the processes, host namespaces and links (the pass before the system stops).
 */
export async function sweepLab(slot: number, opts: { hosts?: boolean } = {}): Promise<string[]> {
  const hosts = opts.hosts ?? true;
  const removed: string[] = [];
  const netnses = (await quiet('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]!).filter(Boolean);
  // Processes still running in a host namespace (agents, a gateway of a dead run): by PID.
  for (const ns of hosts ? netnses.filter((n) => labName(slot).test(n)) : []) {
    for (const pid of (await quiet('ip', ['netns', 'pids', ns])).split('\n').map(Number).filter((p) => p > 0)) {
      try {
        process.kill(pid, 'SIGKILL');
        removed.push(`process ${pid} in ${ns}`);
      } catch {
        /* gone */
      }
    }
  }
  const agents = fs.existsSync('/run/berth') ? fs.readdirSync('/run/berth').filter((n) => nodeName(slot).test(n)) : [];
  for (const name of agents) {
    const root = `/run/berth/${name}`;
    for (const id of (await quiet('runc', ['--root', root, 'list', '-q'])).split('\n').filter(Boolean)) {
      await quiet('runc', ['--root', root, 'kill', id, 'KILL']);
      await sleep(200);
      await quiet('runc', ['--root', root, 'delete', '-f', id]);
      removed.push(`container ${name}/${id}`);
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
  for (const ns of netnses.filter((n) => new RegExp(`^b-bl${slot}(h\\d+|gw)-`).test(n))) {
    await quiet('ip', ['netns', 'delete', ns]);
    removed.push(`netns ${ns}`);
  }
  for (const h of fs.existsSync('/sys/fs/cgroup') ? fs.readdirSync('/sys/fs/cgroup') : []) {
    const parent = `/sys/fs/cgroup/${h}/berth`;
    if (!fs.existsSync(parent) || !fs.statSync(parent).isDirectory()) continue;
    for (const name of fs.readdirSync(parent).filter((n) => nodeName(slot).test(n))) {
      await quiet('find', [`${parent}/${name}`, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
    }
  }
  const mounts = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m): m is string => !!m && new RegExp(`/agent-bl${slot}(h\\d+|gw)-[0-9a-f]+/`).test(m));
  for (const m of mounts.reverse()) {
    await quiet('umount', ['-l', m]);
    removed.push(`mount ${m}`);
  }
  if (!hosts) return removed;
  for (const ns of netnses.filter((n) => labName(slot).test(n))) {
    await quiet('ip', ['netns', 'delete', ns]);
    removed.push(`host ${ns}`);
  }
  const links = (await quiet('ip', ['-o', 'link', 'show']))
    .split('\n')
    .map((l) => l.split(': ')[1]?.split('@')[0])
    .filter((n): n is string => !!n && labName(slot).test(n));
  for (const l of links) {
    await quiet('ip', ['link', 'delete', l]);
    removed.push(`link ${l}`);
  }
  return removed;
}

export async function startLab(opts: LabOptions = {}): Promise<Lab> {
  const mode = opts.mode ?? 'host-gw';
  const staticRoutes = opts.staticRoutes ?? true;
  const hostCount = opts.hosts ?? 3;
  const claimed = claimSlot('lab', 0, 7);
  const slot = claimed.index;
  const id = crypto.randomBytes(3).toString('hex');
  const p = `bl${slot}`;
  const controlAddress = `10.250.${slot}.1`;
  const clusterCidr = `10.${232 + slot}.0.0/16`;
  const bridge = `${p}br`;
  const forwarders: { close(): Promise<void> }[] = [];
  let sys: RunningSystem | undefined;

  const host = (netns: string, underlay: string, podCidr: string | null, node: string | null): LabHost => ({ netns, underlay, podCidr, nodeName: node, agent: null });
  const hosts = Array.from({ length: hostCount }, (_, k) =>
    host(`${p}h${k + 1}`, `10.250.${slot}.${11 + k}`, staticRoutes ? `10.${232 + slot}.${k + 1}.0/24` : null, `${p}h${k + 1}-${id}`),
  );
  const gateway = host(`${p}gw`, `10.250.${slot}.100`, null, staticRoutes ? null : `${p}gw-${id}`);
  const nsExec = (h: LabHost, cmd: string, args: string[]) => sh('ip', ['netns', 'exec', h.netns, cmd, ...args]);

  let stopped = false;
  const stop = async (): Promise<string[]> => {
    if (stopped) return [];
    stopped = true;
    // Agents first, gracefully (in NODE_ENV=test they stop their containers), then the safety net
    // while the data dir (and so the mounts to find) still exists, then the rest of the system.
    for (const a of sys?.agents ?? []) await a.kill('SIGTERM');
    const left = await sweepLab(slot, { hosts: false });
    await sys?.stop();
    await sweepLab(slot);
    fs.rmSync(recordFile(slot), { force: true });
    for (const f of forwarders) await f.close();
    httpAgent.destroy();
    claimed.release();
    return left;
  };

  try {
    // A crashed run's leftovers: host namespaces and what is in them first, then its control plane.
    const stale = [...(await sweepLab(slot)), ...(await sweepRecord(slot))];
    if (stale.length) console.warn(`lab slot ${slot}: removed leftovers of an earlier run: ${stale.join(', ')}`);
    await sh('ip', ['link', 'add', bridge, 'type', 'bridge']);
    await sh('ip', ['addr', 'add', `${controlAddress}/24`, 'dev', bridge]);
    await sh('ip', ['link', 'set', bridge, 'up']);
    for (const h of [...hosts, gateway]) {
      await sh('ip', ['netns', 'add', h.netns]);
      await sh('ip', ['link', 'add', h.netns, 'type', 'veth', 'peer', 'name', 'ul0', 'netns', h.netns]);
      await sh('ip', ['link', 'set', h.netns, 'master', bridge, 'up']);
      await sh('ip', ['-n', h.netns, 'addr', 'add', `${h.underlay}/24`, 'dev', 'ul0']);
      await sh('ip', ['-n', h.netns, 'link', 'set', 'ul0', 'up']);
      await sh('ip', ['-n', h.netns, 'link', 'set', 'lo', 'up']);
      await nsExec(h, 'sysctl', ['-qw', 'net.ipv4.ip_forward=1']);
    }
    if (staticRoutes) {
      for (const h of [...hosts, gateway]) {
        for (const peer of hosts) {
          if (peer !== h) await sh('ip', ['-n', h.netns, 'route', 'replace', peer.podCidr!, 'via', peer.underlay]);
        }
      }
    }
    // Redis and the registry listen on 127.0.0.1 of the root namespace: forward them to the bridge address.
    const redis = new URL(TEST_REDIS_URL);
    const [regHost, regPort] = TEST_REGISTRY.split(':');
    forwarders.push(await forwarder(controlAddress, Number(redis.port || 6379), redis.hostname, Number(redis.port || 6379)));
    forwarders.push(await forwarder(controlAddress, Number(regPort ?? 80), regHost!, Number(regPort ?? 80)));

    const registry = `${controlAddress}:${regPort ?? 80}`;
    const network: Record<string, string> = staticRoutes ? {} : { BERTH_NETWORK_MODE: mode, BERTH_CLUSTER_CIDR: clusterCidr };
    sys = await startSystem({
      runtime: 'runc',
      controlAddress,
      gatewayNetns: { netns: gateway.netns, address: gateway.underlay },
      env: {
        BERTH_REGISTRY_INSECURE: `${TEST_REGISTRY},${registry}`,
        BERTH_REGISTRY_ALLOW_PRIVATE: `${TEST_REGISTRY},${registry}`,
        ...network,
        ...opts.env,
      },
      appEnv: opts.appEnv,
    });
    const record = () => {
      const rec: LabRecord = { pids: sys!.pids(), databaseUrl: sys!.databaseUrl, dataDir: sys!.dataDir };
      fs.writeFileSync(recordFile(slot), JSON.stringify(rec));
    };
    record();
    const startAgent = async (h: LabHost, env: Record<string, string>) => {
      h.agent = await sys!.startAgent(h.nodeName!, {
        netns: h.netns,
        address: h.underlay,
        // wireguard-go's control socket (/var/run/wireguard/<if>.sock) is on the one host filesystem:
        // each lab host's interface needs a name of its own (its namespace name is unique).
        env: { BERTH_NODE_ADDRESS: h.underlay, BERTH_CNI_BRIDGE: 'berth0', BERTH_WIREGUARD_INTERFACE: `wg${h.netns}`.slice(0, 15), ...env },
      });
      record();
    };
    if (!staticRoutes) await startAgent(gateway, { BERTH_NODE_SCHEDULABLE: 'false' });
    for (const h of hosts) await startAgent(h, h.podCidr ? { BERTH_CNI_SUBNET: h.podCidr } : {});
  } catch (e) {
    await stop().catch(() => undefined);
    throw e;
  }

  return {
    sys,
    slot,
    mode,
    controlAddress,
    clusterCidr,
    hosts,
    gateway,
    image: (nameTag) => `${controlAddress}:${TEST_REGISTRY.split(':')[1] ?? 80}/berth-fixtures/${nameTag}`,
    get: (service, path = '/', timeoutMs = 10_000, project = sys!.projectSlug) => gatewayGet(sys!.gatewayUrl, `${service}.${project}.localhost`, path, timeoutMs),
    cutLink: async (h) => void (await sh('ip', ['link', 'set', h.netns, 'down'])),
    restoreLink: async (h) => void (await sh('ip', ['link', 'set', h.netns, 'up'])),
    exec: nsExec,
    stop,
  };
}
