import { ChildProcess, execFile, execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { Client } from 'pg';
import { fixtureImage } from '../../support/env';
import { startTestRedis, type TestRedis } from '../../support/redis-server';
import { api, freePort, startSystem, waitForSystem, type RunningSystem } from '../../support/system';
import { makeTestCerts } from '../../support/tls';

/**
 * infra/install-worker.sh (issue 15, item 2): lint, dry run, the agent.env it writes, and the agent
 * it starts (`--run`, what the systemd unit runs) inside a fresh network namespace — a "host" that
 * reaches the control plane only by a non-loopback address, over TLS (api over HTTPS, Redis on its
 * TLS port, CA given with --ca-file), with its own Redis user. The agent runs the hollow runtime
 * (runc replicas across hosts are the lab's tests); what is tested here is the join over the network.
 */
jest.setTimeout(240_000);

const run = promisify(execFile);
const REPO = path.resolve(__dirname, '../../..');
const SCRIPT = path.join(REPO, 'infra/install-worker.sh');
// Unique per test process: netns, veth pair and a /24 no other test uses.
const tag = `bwk${process.pid % 100000}`;
const octet = 1 + (process.pid % 250);
const hostIp = `10.251.${octet}.1`;
const workerIp = `10.251.${octet}.2`;

let tmp: string;
let root: string;
let redis: TestRedis | undefined;
let sys: RunningSystem | undefined;
let agent: ChildProcess | undefined;
let db: Client | undefined;

const script = (args: string[], env: NodeJS.ProcessEnv = {}) => run('bash', [SCRIPT, ...args], { env: { ...process.env, ...env } });
const ip = (...args: string[]) => execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'] });
const quiet = (f: () => unknown) => {
  try {
    f();
  } catch {
    /* already gone */
  }
};

function removeNet() {
  quiet(() => ip('netns', 'del', tag));
  quiet(() => ip('link', 'del', `${tag}r`));
}

beforeAll(() => {
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-install-worker-'));
  root = path.join(tmp, 'root');
  removeNet(); // a crashed earlier run of this PID's tag
});

afterAll(async () => {
  if (agent && agent.exitCode === null) {
    const exited = new Promise((r) => agent!.once('exit', r));
    agent.kill('SIGTERM');
    const t = setTimeout(() => agent!.kill('SIGKILL'), 10_000);
    await exited;
    clearTimeout(t);
  }
  await db?.end().catch(() => undefined);
  await sys?.stop();
  await redis?.stop();
  removeNet();
  if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
});

it('is shellcheck-clean', async () => {
  await expect(run('shellcheck', [SCRIPT])).resolves.toBeDefined();
});

it('--dry-run prints every step and changes nothing; bad input is refused with a reason', async () => {
  const { stdout } = await script(['--dry-run', '--prefix', root, '--api-url', 'https://10.0.0.1:8080', '--join-token', 'bjt_secret', '--node-name', 'worker-2', '--underlay', '10.0.0.12', '--redis-url', 'redis://:redispw@10.0.0.1:6379']);
  for (const step of ['Debian packages', 'Node.js >= 20', 'agent code', 'writing', 'systemd unit']) expect(stdout).toContain(step);
  expect(stdout).toMatch(/\+ rsync -a --delete .* \S+\/opt\/berth\//);
  expect(stdout).toMatch(/npm install --ignore-scripts .* npm run -s build/);
  expect(stdout).toContain('BERTH_NODE_UNDERLAY_ADDRESS=10.0.0.12');
  expect(stdout).toContain('REDIS_URL=redis://…@10.0.0.1:6379'); // only for BERTH_REDIS_NODE_ACL=off clusters
  expect(stdout).not.toMatch(/bjt_secret|redispw/); // secrets are not echoed
  expect(fs.existsSync(root)).toBe(false);
  const refuse = (args: string[]) => script(['--dry-run', '--prefix', root, ...args]).then(() => '', (e: { stderr: string }) => e.stderr);
  expect(await refuse(['--node-name', 'w'])).toMatch(/--api-url is required/);
  expect(await refuse(['--api-url', 'https://x:1', '--node-name', 'Bad_Name', '--underlay', '10.0.0.2', '--join-token', 'bjt_x'])).toMatch(/not a DNS label/);
  expect(await refuse(['--api-url', 'https://x:1', '--node-name', 'w', '--underlay', 'host.example', '--join-token', 'bjt_x'])).toMatch(/must be an IPv4 address/);
  expect(await refuse(['--api-url', 'https://x:1', '--node-name', 'w', '--underlay', '10.0.0.2'])).toMatch(/--join-token is required for the first start/);
});

it('a fresh network namespace "host" joins through a non-loopback address over TLS with the env file the script writes, and gets replicas', async () => {
  // The "host": a netns with a veth into the root namespace; the control plane listens on hostIp.
  ip('link', 'add', `${tag}r`, 'type', 'veth', 'peer', 'name', `${tag}n`);
  ip('netns', 'add', tag);
  ip('link', 'set', `${tag}n`, 'netns', tag);
  ip('addr', 'add', `${hostIp}/24`, 'dev', `${tag}r`);
  ip('link', 'set', `${tag}r`, 'up');
  ip('-n', tag, 'addr', 'add', `${workerIp}/24`, 'dev', `${tag}n`);
  ip('-n', tag, 'link', 'set', `${tag}n`, 'up');
  ip('-n', tag, 'link', 'set', 'lo', 'up');

  const certs = makeTestCerts(path.join(tmp, 'tls'), ['localhost', '127.0.0.1', hostIp]);
  const tlsPort = await freePort();
  redis = await startTestRedis({ port: await freePort(), tlsPort, certs, bind: ['127.0.0.1', hostIp] });
  sys = await startSystem({
    runtime: 'hollow',
    redisUrl: redis.url,
    apiTls: certs,
    appEnv: { api: { BERTH_API_HOST: '0.0.0.0', BERTH_AGENT_REDIS_URL: `rediss://${hostIp}:${tlsPort}` } },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
  const apiPort = new URL(sys.apiUrl).port;
  const token = (await api(sys.apiUrl, 'POST', '/v1/nodes/join-tokens', { nodeName: 'worker-ns' }, sys.adminToken)).token as string;

  // Inside the host: the env file (underlay worked out from the route to the api), twice (idempotent;
  // the second run without a token keeps it).
  const inNs = (args: string[]) => run('ip', ['netns', 'exec', tag, 'bash', SCRIPT, ...args]);
  await inNs(['--env-only', '--prefix', root, '--api-url', `https://${hostIp}:${apiPort}`, '--join-token', token, '--node-name', 'worker-ns', '--ca-file', certs.caFile]);
  await inNs(['--env-only', '--prefix', root]);
  const envFile = path.join(root, 'etc/berth/agent.env');
  expect(fs.statSync(envFile).mode & 0o777).toBe(0o600);
  const env = fs.readFileSync(envFile, 'utf8');
  expect(env).toContain(`BERTH_JOIN_TOKEN=${token}\n`);
  expect(env).toContain(`BERTH_NODE_UNDERLAY_ADDRESS=${workerIp}\n`);
  expect(env).toContain(`BERTH_NODE_ADDRESS=${workerIp}\n`);
  expect(env).toContain(`BERTH_CA_FILE=${root}/etc/berth/ca.pem\n`);
  expect(env).not.toMatch(/REDIS_URL/); // the api hands the agent its Redis
  // This test's agent: the hollow runtime (the operator's file is theirs to edit).
  fs.appendFileSync(envFile, 'BERTH_RUNTIME=hollow\nNODE_ENV=test\nBERTH_HEARTBEAT_INTERVAL_MS=500\n');

  const log = fs.openSync(path.join(tmp, 'agent.log'), 'a');
  agent = spawn('ip', ['netns', 'exec', tag, 'bash', SCRIPT, '--run', '--prefix', root], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, BERTH_AGENT_HOME: REPO, BERTH_AGENT_EXEC: 'node -r @swc-node/register apps/agent/src/main.ts' },
    stdio: ['ignore', log, log],
  });
  const agentLog = () => fs.readFileSync(path.join(tmp, 'agent.log'), 'utf8').slice(-3000);
  const waitFor = <T>(what: string, fn: () => Promise<T | null | false | undefined>) =>
    waitForSystem(sys!, what, async () => {
      if (agent!.exitCode !== null) throw new Error(`agent exited ${agent!.exitCode}: ${agentLog()}`);
      return fn();
    }).catch((e: Error) => {
      throw new Error(`${e.message}\n--- agent in ${tag}\n${agentLog()}`);
    });

  const node = await waitFor('worker-ns READY', async () => {
    const r = await db!.query<{ id: string; address: string; status: string }>(`select id, address, status from "Node" where name = 'worker-ns'`);
    return r.rows[0]?.status === 'READY' && r.rows[0];
  });
  expect(node.address).toBe(workerIp);
  // Its Redis connections come from the host's address, as its own user, on the TLS port.
  const admin = new Redis(redis.url);
  try {
    const conns = await waitFor('agent connected to Redis', async () => {
      const list = String(await admin.call('CLIENT', 'LIST')).split('\n').filter((l) => l.includes(` user=berth-node-${node.id} `));
      return list.length >= 2 && list;
    });
    for (const c of conns) {
      expect(c).toMatch(new RegExp(`addr=${workerIp.replace(/\./g, '\\.')}:\\d+ `));
      expect(c).toMatch(new RegExp(`laddr=${hostIp.replace(/\./g, '\\.')}:${tlsPort} `));
    }
  } finally {
    admin.disconnect();
  }
  // The credential and Redis password live under the prefix's data dir, 0600.
  for (const f of ['node-credential', 'redis-password']) expect(fs.statSync(path.join(root, 'var/lib/berth/agent-worker-ns', f)).mode & 0o777).toBe(0o600);

  // Commands reach it: a service's replicas become READY on it.
  await api(sys.apiUrl, 'POST', '/v1/services', { name: 'web', image: fixtureImage('web:v1'), port: 8080, scaling: { min: 2, max: 2 } }, sys.adminToken, sys.projectSlug);
  await waitFor('2 READY on worker-ns', async () => {
    const r = await db!.query<{ n: string }>(`select count(*) as n from "Replica" where state = 'READY' and "nodeId" = $1`, [node.id]);
    return Number(r.rows[0]!.n) === 2;
  });
});
