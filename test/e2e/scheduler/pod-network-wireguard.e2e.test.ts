import { execFileSync } from 'node:child_process';
import crypto from 'node:crypto';
import { Client } from 'pg';
import { api, freePort, startSystem, type RunningSystem, waitForSystem } from '../../support/system';
import { fixtureImage } from '../../support/env';
import { stopRuncSystem } from './leftovers';

/**
 * The agent's wireguard-mode start path with real processes: the api hands out the mode; the agent
 * makes its key pair, registers again with the public key (the api stores it, GET /v1/nodes shows
 * it), and on the first network-sync brings up its WireGuard interface (wireguard-go here: this
 * kernel has no module) on the cluster's port; its replicas still run on its subnet. Stopping the
 * agent (NODE_ENV=test) removes the interface. Cross-host traffic through the tunnel is covered by
 * test/integration/network/pod-network.test.ts and the lab tests.
 */
jest.setTimeout(180_000);

let sys: RunningSystem;
let db: Client;
let wgPort = 0;
// wireguard-go's control socket lives on the host filesystem: a name of its own.
const wgIf = `bwg${crypto.randomBytes(3).toString('hex')}`;
const waitFor = <T>(what: string, fn: () => Promise<T | null | false | undefined>, timeoutMs = 60_000) => waitForSystem(sys, what, fn, timeoutMs);
const linkExists = (name: string) => {
  try {
    execFileSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};

beforeAll(async () => {
  wgPort = await freePort();
  sys = await startSystem({
    agents: 1,
    runtime: 'runc',
    env: { BERTH_NETWORK_MODE: 'wireguard', BERTH_WIREGUARD_PORT: String(wgPort) },
    appEnv: { agent: { BERTH_CNI_BRIDGE: 'auto', BERTH_WIREGUARD_INTERFACE: wgIf } },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end().catch(() => undefined);
  const left = await stopRuncSystem(sys);
  expect(left.filter((l) => l.startsWith('container'))).toEqual([]);
  // SIGTERM in test mode tears the pod network down: the interface (and its wireguard-go) is gone.
  const still = linkExists(wgIf);
  if (still) execFileSync('ip', ['link', 'del', 'dev', wgIf]);
  expect(still).toBe(false);
});

it('registers its WireGuard public key and brings the interface up on the cluster port', async () => {
  const node = ((await api(sys.apiUrl, 'GET', '/v1/nodes', undefined, sys.adminToken)).items as any[])[0];
  expect(node.network.wireguardPublicKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  // Up once the interface exists and listens on the cluster's port (set right after it is created).
  await waitFor('the WireGuard interface on the cluster port', async () => linkExists(wgIf) && execFileSync('wg', ['show', wgIf, 'listen-port']).toString().trim() === String(wgPort));
  expect(execFileSync('wg', ['show', wgIf, 'public-key']).toString().trim()).toBe(node.network.wireguardPublicKey);

  await api(sys.apiUrl, 'POST', '/v1/services', { name: 'web', image: fixtureImage('web:v1'), port: 8080, scaling: { min: 1, max: 1 } }, sys.adminToken, sys.projectSlug);
  const r = await waitFor('1 READY', async () => (await db.query<{ address: string; port: number }>(`select address, port from "Replica" where state = 'READY'`)).rows[0], 90_000);
  expect(r.address.startsWith(node.network.podCidr.split('.').slice(0, 3).join('.'))).toBe(true);
  expect((await fetch(`http://${r.address}:${r.port}/`, { signal: AbortSignal.timeout(3000) })).status).toBe(200);
});
