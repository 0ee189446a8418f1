import { ChildProcess, execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Agent, fetch as undiciFetch } from 'undici';
import { dropDatabase, migrateDeploy, withDatabase } from '@berth/db/migrate';
import { masqueradeChainFor } from '@berth/runtime';
import { cniBridgeFor } from '../../apps/agent/src/config';
import { TEST_DATABASE_URL } from './env';
import { freePort } from './net';

export { freePort };

/**
 * Boots a whole Berth (api, scheduler, gateway and N agents) as real child processes on free
 * loopback ports, against a fresh database and a Redis database index of its own, for e2e tests.
 * `stop()` ends every process it started (by PID), lets agents clean up their containers, and drops
 * the database.
 */
export interface SystemOptions {
  agents?: number;
  runtime?: 'runc' | 'hollow';
  /** Extra environment for every process (e.g. short autoscaler windows). */
  env?: Record<string, string>;
  /** Per-app extra environment. */
  appEnv?: Partial<Record<'api' | 'scheduler' | 'gateway' | 'agent', Record<string, string>>>;
  /**
   * Multi-host lab (test/support/lab.ts): the address processes in other network namespaces reach
   * the control plane at. The api listens there (and `apiUrl` names it); processes started in a
   * namespace get REDIS_URL and BERTH_API_URL pointing there (the caller forwards Redis to it).
   */
  controlAddress?: string;
  /** Runs the gateway inside this network namespace, listening on `address` (needs `controlAddress`). */
  gatewayNetns?: { netns: string; address: string };
  /** Serve the api over HTTPS (agents get BERTH_CA_FILE=caFile; the harness trusts caFile); apiUrl is https://localhost:<port>. */
  apiTls?: { certFile: string; keyFile: string; caFile: string };
  /** A Redis of the test's own (e.g. one it restarts, or with TLS) instead of the shared one; database 0 is flushed. */
  redisUrl?: string;
}

/** Where and how one agent runs (lab hosts: its own network namespace and environment). */
export interface AgentStartOptions {
  /** Replaces the system's join token for this start. */
  joinToken?: string;
  /** Network namespace (name under /run/netns) the agent runs in; its ops port listens on `address`. */
  netns?: string;
  address?: string;
  /** Extra environment for this agent (after `appEnv.agent`). With `netns`, set its CNI bridge and subnet here. */
  env?: Record<string, string>;
}

export interface RunningSystem {
  apiUrl: string;
  gatewayUrl: string;
  gatewayPort: number;
  opsUrls: Record<string, string>;
  databaseUrl: string;
  redisUrl: string;
  /** The system's pod range (BERTH_CLUSTER_CIDR of its api and scheduler), its own on this machine. */
  clusterCidr: string;
  adminEmail: string;
  adminPassword: string;
  adminToken: string;
  projectSlug: string;
  dataDir: string;
  agents: AgentProcess[];
  /**
   * Starts one more agent (or restarts a killed one with the same name; it keeps its data dir and so
   * its node credential). `joinToken` replaces the system's join token for this start.
   */
  startAgent(name?: string, opts?: AgentStartOptions): Promise<AgentProcess>;
  logs(app: string): string;
  /** PIDs of every process the system started (so a harness can record them for a later crash sweep). */
  pids(): number[];
  stop(): Promise<void>;
}

export interface AgentProcess {
  name: string;
  opsUrl: string;
  pid: number;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

const REPO = path.resolve(__dirname, '../..');

/** Systems serving the api over HTTPS: how the harness reaches them (origin → fetch trusting their CA). */
const tlsFetch = new Map<string, typeof fetch>();
const fetchFor = (url: string): typeof fetch => tlsFetch.get(new URL(url).origin) ?? fetch;

function fetchTrusting(caFile: string): typeof fetch {
  const dispatcher = new Agent({ connect: { ca: fs.readFileSync(caFile) } });
  return ((url: string, init?: RequestInit) => undiciFetch(url, { ...(init as object), dispatcher })) as unknown as typeof fetch;
}
const REDIS_BASE = process.env.BERTH_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Exclusive slots shared by test systems running at the same time (parallel jest workers, a bench
 * beside the suite): lock files under the temp dir holding the owner's PID; a dead owner's slot is
 * taken over.
 */
function claimSlot(kind: string, from: number, to: number): { index: number; release: () => void } {
  const dir = path.join(os.tmpdir(), `berth-test-${kind}`);
  fs.mkdirSync(dir, { recursive: true });
  for (let i = from; i <= to; i++) {
    const lock = path.join(dir, String(i));
    try {
      const fd = fs.openSync(lock, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      return { index: i, release: () => fs.rmSync(lock, { force: true }) };
    } catch {
      const owner = Number(fs.readFileSync(lock, 'utf8'));
      if (owner && !alive(owner)) {
        fs.rmSync(lock, { force: true });
        i--;
      }
    }
  }
  throw new Error(`no free ${kind} slot (${from}..${to}) for a test system`);
}

export { claimSlot };

/** Redis database indexes 1..15, one per running test system. */
const claimRedisDb = () => claimSlot('redis-db', 1, 15);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitHttp(url: string, timeoutMs: number, proc?: ChildProcess, logFile?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (proc && proc.exitCode !== null) {
      throw new Error(`${url}: process exited with ${proc.exitCode}\n${logFile ? tail(logFile) : ''}`);
    }
    try {
      const r = await fetchFor(url)(url, { signal: AbortSignal.timeout(1000) });
      if (r.ok) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} not healthy after ${timeoutMs} ms\n${logFile ? tail(logFile) : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function tail(file: string, lines = 40): string {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

function runTs(entry: string, env: NodeJS.ProcessEnv, logFile: string, netns?: string): ChildProcess {
  const out = fs.openSync(logFile, 'a');
  const argv = [process.execPath, '-r', '@swc-node/register', entry];
  // nsenter switches the network namespace only (`ip netns exec` would also remount /sys, hiding the
  // cgroup hierarchies runc needs) and execs node: the child's PID is node's own.
  const [cmd, ...args] = netns ? ['nsenter', `--net=/run/netns/${netns}`, '--', ...argv] : argv;
  return spawn(cmd!, args, {
    cwd: REPO,
    env,
    stdio: ['ignore', out, out],
    detached: true, // own process group: a killed test run does not take them down half-way
  });
}

async function killProc(p: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', waitMs = 10_000): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise<void>((r) => p.once('exit', () => r()));
  try {
    process.kill(p.pid!, signal);
  } catch {
    return;
  }
  const t = setTimeout(() => {
    try {
      process.kill(p.pid!, 'SIGKILL');
    } catch {}
  }, waitMs);
  await exited;
  clearTimeout(t);
}

export async function startSystem(opts: SystemOptions = {}): Promise<RunningSystem> {
  const id = crypto.randomBytes(3).toString('hex');
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `berth-sys-${id}-`));
  const logsDir = path.join(dataDir, 'logs');
  fs.mkdirSync(logsDir);
  const databaseUrl = withDatabase(TEST_DATABASE_URL, `berth_sys_${id}`);
  await migrateDeploy(databaseUrl);
  const redisDb = opts.redisUrl ? { index: 0, release: () => undefined } : claimRedisDb();
  const redisUrl = opts.redisUrl ?? `${REDIS_BASE.replace(/\/\d*$/, '')}/${redisDb.index}`;
  // What a process in another network namespace uses: the same Redis database through the control address.
  const nsRedisUrl = (() => {
    if (!opts.controlAddress) return redisUrl;
    const u = new URL(redisUrl);
    u.hostname = opts.controlAddress;
    return u.toString();
  })();
  const apiHost = opts.controlAddress ?? '127.0.0.1';
  // Each system its own pod range (its Redis slot is exclusive on this machine): systems running at
  // once would otherwise each give their first node the same subnet, and their bridges in the one
  // host network namespace would clash. 172.17-31.0.0/16: clear of the ranges older harnesses use.
  // (A lab sets BERTH_CLUSTER_CIDR of its own through `env`.)
  const clusterCidr = `172.${16 + redisDb.index}.0.0/16`;
  // A fresh Redis database for this system.
  const { default: Redis } = await import('ioredis');
  const r = new Redis(redisUrl);
  await r.flushdb();
  await r.quit();

  const [apiPort, gatewayPort, gatewayOps, schedulerOps] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const adminEmail = `admin-${id}@example.test`;
  const adminPassword = `pw-${crypto.randomBytes(8).toString('hex')}`;
  const common: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.BERTH_TEST_LOG_LEVEL ?? 'info',
    DATABASE_URL: databaseUrl,
    REDIS_URL: redisUrl,
    BERTH_DATA_DIR: dataDir,
    BERTH_BASE_DOMAIN: 'localhost',
    BERTH_GATEWAY_PUBLIC_PORT: String(gatewayPort),
    BERTH_REGISTRY_INSECURE: '127.0.0.1:5000,localhost:5000',
    BERTH_CLUSTER_CIDR: clusterCidr,
    ...opts.env,
  };
  const procs: { name: string; proc: ChildProcess }[] = [];
  const start = async (app: 'api' | 'scheduler' | 'gateway', env: NodeJS.ProcessEnv, healthUrl: string, netns?: string) => {
    const logFile = path.join(logsDir, `${app}.log`);
    const proc = runTs(`apps/${app}/src/main.ts`, { ...common, ...env, ...opts.appEnv?.[app] }, logFile, netns);
    procs.push({ name: app, proc });
    await waitHttp(healthUrl, 60_000, proc, logFile);
  };

  const agents: AgentProcess[] = [];
  /** Agents started so far; `net` is the root-namespace bridge slot of an agent outside a lab host. */
  const agentNets = new Map<string, { net: { index: number; release: () => void } | null }>();
  const gatewayHost = opts.gatewayNetns?.address ?? '127.0.0.1';
  let stopped = false;
  const system: RunningSystem = {
    apiUrl: opts.apiTls ? `https://localhost:${apiPort}` : `http://${apiHost}:${apiPort}`,
    gatewayUrl: `http://${gatewayHost}:${gatewayPort}`,
    gatewayPort,
    opsUrls: { scheduler: `http://127.0.0.1:${schedulerOps}`, gateway: `http://${gatewayHost}:${gatewayOps}` },
    databaseUrl,
    redisUrl,
    clusterCidr: opts.env?.BERTH_CLUSTER_CIDR ?? clusterCidr,
    adminEmail,
    adminPassword,
    adminToken: '',
    projectSlug: 'default',
    dataDir,
    agents,
    logs: (app) => tail(path.join(logsDir, `${app}.log`), 200),
    pids: () => procs.map((p) => p.proc.pid!).filter(Boolean),
    startAgent: async (name?: string, startOpts: AgentStartOptions = {}) => {
      const n = name ?? `node-${agents.length + 1}-${id}`;
      // A lab host has its own network namespace, so its own ports: any port is free there.
      const ops = startOpts.netns ? 9102 : await freePort();
      const opsHost = startOpts.netns ? (startOpts.address ?? '127.0.0.1') : '127.0.0.1';
      const existing = agentNets.get(n);
      // Outside a lab host each agent gets its own bridge and subnet: agents of two systems sharing
      // one bridge and subnet would hand out the same addresses from separate IPAM stores.
      const net = existing?.net ?? (startOpts.netns ? null : claimSlot('subnet', 0, 255));
      agentNets.set(n, { net });
      const logFile = path.join(logsDir, `agent-${n}.log`);
      const proc = runTs(
        'apps/agent/src/main.ts',
        {
          ...common,
          DATABASE_URL: '',
          ...(startOpts.netns ? { REDIS_URL: nsRedisUrl, BERTH_AGENT_OPS_HOST: opsHost } : {}),
          BERTH_API_URL: system.apiUrl,
          ...(opts.apiTls ? { BERTH_CA_FILE: opts.apiTls.caFile } : {}),
          BERTH_JOIN_TOKEN: startOpts.joinToken ?? joinToken,
          BERTH_NODE_NAME: n,
          BERTH_AGENT_OPS_PORT: String(ops),
          BERTH_RUNTIME: opts.runtime ?? 'runc',
          // Each agent its own bridge (unique on the machine); its subnet is the one the api assigns.
          ...(net ? { BERTH_CNI_BRIDGE: `bt${net.index}` } : {}),
          ...opts.appEnv?.agent,
          ...startOpts.env,
        },
        logFile,
        startOpts.netns,
      );
      procs.push({ name: `agent-${n}`, proc });
      await waitHttp(`http://${opsHost}:${ops}/healthz`, 60_000, proc, logFile);
      const a: AgentProcess = {
        name: n,
        opsUrl: `http://${opsHost}:${ops}`,
        pid: proc.pid!,
        kill: (signal = 'SIGKILL') => killProc(proc, signal),
      };
      const i = agents.findIndex((x) => x.name === n);
      if (i >= 0) agents[i] = a;
      else agents.push(a);
      return a;
    },
    stop: async () => {
      if (stopped) return;
      stopped = true;
      // Agents first, gracefully, so they stop and destroy their containers.
      for (const p of [...procs].reverse()) await killProc(p.proc, 'SIGTERM');
      for (const [name, { net }] of agentNets) {
        // runc's state root of the agent: removed only when empty (a container left behind keeps it
        // for the leftover checks to find).
        try {
          fs.rmdirSync(`/run/berth/${name}`);
        } catch {
          /* not there, or not empty */
        }
        // The agent's cgroup parent in every hierarchy (runc removes only the containers' own).
        for (const h of fs.existsSync('/sys/fs/cgroup') ? fs.readdirSync('/sys/fs/cgroup') : []) {
          try {
            fs.rmdirSync(`/sys/fs/cgroup/${h}/berth/${name}`);
          } catch {
            /* not there, or still holding a container */
          }
        }
        // The bridge outlives its agents; remove it so the host keeps no test interfaces. The same for
        // the agent's tenant isolation table (an agent that did not stop gracefully leaves it). (A lab
        // host's bridge and table live in the host's namespace and go with it.)
        if (!net) continue;
        await new Promise((r) => execFile('ip', ['link', 'del', `bt${net.index}`], () => r(undefined)));
        await new Promise((r) => execFile('nft', ['delete', 'table', 'inet', `berth_iso_bt${net.index}`], () => r(undefined)));
        // An agent that was killed leaves its masquerade chain (nat) too.
        for (const bridge of [`bt${net.index}`, cniBridgeFor({ BERTH_CNI_BRIDGE: 'auto' }, name)]) await removeMasqueradeChain(bridge);
        net.release();
      }
      // The nodes' Redis ACL users (server-wide, not per database) go with the system.
      await dropNodeRedisUsers(databaseUrl, redisUrl).catch(() => undefined);
      redisDb.release();
      await dropDatabase(databaseUrl).catch(() => undefined);
      if (!process.env.BERTH_TEST_KEEP) fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };

  let joinToken = '';
  if (opts.apiTls) tlsFetch.set(new URL(system.apiUrl).origin, fetchTrusting(opts.apiTls.caFile));
  try {
    await start(
      'api',
      {
        BERTH_API_PORT: String(apiPort),
        BERTH_API_HOST: apiHost,
        // Agents get their Redis address (and their own ACL user) from the api: in a lab, the control address.
        ...(opts.controlAddress ? { BERTH_AGENT_REDIS_URL: nsRedisUrl } : {}),
        ...(opts.apiTls ? { BERTH_API_TLS_CERT_FILE: opts.apiTls.certFile, BERTH_API_TLS_KEY_FILE: opts.apiTls.keyFile } : {}),
        BERTH_BOOTSTRAP_ADMIN_EMAIL: adminEmail,
        BERTH_BOOTSTRAP_ADMIN_PASSWORD: adminPassword,
      },
      `${system.apiUrl}/healthz`,
    );
    await start('scheduler', { BERTH_SCHEDULER_OPS_PORT: String(schedulerOps) }, `${system.opsUrls.scheduler}/healthz`);
    await start(
      'gateway',
      {
        BERTH_GATEWAY_PORT: String(gatewayPort),
        BERTH_GATEWAY_OPS_PORT: String(gatewayOps),
        ...(opts.gatewayNetns ? { BERTH_GATEWAY_HOST: gatewayHost, REDIS_URL: nsRedisUrl } : {}),
      },
      `${system.opsUrls.gateway}/healthz`,
      opts.gatewayNetns?.netns,
    );
    // Log in as the bootstrap admin, make an admin API token and a node join token.
    const login = await api(system.apiUrl, 'POST', '/v1/auth/login', { email: adminEmail, password: adminPassword });
    const jwt = login.accessToken ?? login.token;
    const tok = await api(system.apiUrl, 'POST', '/v1/tokens', { name: 'e2e-admin', role: 'admin' }, jwt, system.projectSlug);
    system.adminToken = tok.token;
    const jt = await api(system.apiUrl, 'POST', '/v1/nodes/join-tokens', { description: 'e2e' }, system.adminToken);
    joinToken = jt.token;
    for (let i = 0; i < (opts.agents ?? 0); i++) await system.startAgent();
  } catch (e) {
    const logs = procs.map((p) => `--- ${p.name}\n${system.logs(p.name)}`).join('\n');
    await system.stop();
    throw new Error(`${(e as Error).message}\n${logs}`);
  }
  return system;
}

const quietExec = (args: string[]) => new Promise((r) => execFile('iptables', args, () => r(undefined)));

/** Removes a node's masquerade chain (PodNetwork's, one per bridge) from the host's nat table, if there. */
export async function removeMasqueradeChain(bridge: string): Promise<void> {
  const chain = masqueradeChainFor(bridge);
  await quietExec(['-t', 'nat', '-D', 'POSTROUTING', '-j', chain]);
  await quietExec(['-t', 'nat', '-F', chain]);
  await quietExec(['-t', 'nat', '-X', chain]);
}

async function dropNodeRedisUsers(databaseUrl: string, redisUrl: string): Promise<void> {
  const { Client } = await import('pg');
  const db = new Client({ connectionString: databaseUrl });
  await db.connect();
  let ids: string[];
  try {
    ids = (await db.query<{ id: string }>('select id from "Node"')).rows.map((r) => r.id);
  } finally {
    await db.end();
  }
  if (!ids.length) return;
  const { default: Redis } = await import('ioredis');
  const r = new Redis(redisUrl, { maxRetriesPerRequest: 1 });
  try {
    for (let i = 0; i < ids.length; i += 500) await r.call('ACL', 'DELUSER', ...ids.slice(i, i + 500).map((id) => `berth-node-${id}`));
  } finally {
    r.disconnect();
  }
}

/** Minimal JSON client for harness set-up; throws with the API's error body on non-2xx. */
export async function api(base: string, method: string, p: string, body?: unknown, bearer?: string, project?: string): Promise<any> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (bearer) headers.authorization = `Bearer ${bearer}`;
  if (project) headers['x-berth-project'] = project;
  const r = await fetchFor(base)(`${base}${p}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await r.text();
  const json = text ? JSON.parse(text) : undefined;
  if (!r.ok) throw new Error(`${method} ${p} → ${r.status} ${text}`);
  return json;
}

/**
 * Polls `fn` (errors count as "not yet") until it returns something truthy; on timeout, throws with
 * the last log lines of the system's scheduler, api and agents, so a failure explains itself.
 */
export async function waitForSystem<T>(
  sys: RunningSystem,
  what: string,
  fn: () => Promise<T | null | false | undefined>,
  timeoutMs = 60_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) {
      const apps = ['scheduler', 'api', ...sys.agents.map((a) => `agent-${a.name}`)];
      throw new Error(`timed out waiting for ${what}\n${apps.map((a) => `--- ${a}\n${sys.logs(a).split('\n').slice(-20).join('\n')}`).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
