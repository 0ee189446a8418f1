import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { api, startSystem, type RunningSystem } from '../../support/system';
import { fixtureImage } from '../../support/env';
import { startHtpasswdRegistry, type OwnRegistry } from '../../integration/oci/helpers/servers';
import { stopRuncSystem } from './leftovers';

/**
 * A private image end to end: the web fixture copied into a docker-registry with htpasswd auth; the
 * project stores its credentials through the API; a real runc agent pulls the image with them
 * (asked from the API at pull time) and the replica becomes READY.
 */
jest.setTimeout(180_000);

const run = promisify(execFile);
const USER = 'deployer';
const PASSWORD = 'private-pw-42';
let sys: RunningSystem;
let db: Client;
let registry: OwnRegistry;

async function waitFor<T>(what: string, fn: () => Promise<T | null | false | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => null);
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}\n--- agent\n${sys.logs(`agent-${sys.agents[0]!.name}`).split('\n').slice(-20).join('\n')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

beforeAll(async () => {
  registry = await startHtpasswdRegistry(USER, PASSWORD);
  await run('skopeo', [
    'copy', '--quiet', '--src-tls-verify=false', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`,
    `docker://${fixtureImage('web:v1')}`, `docker://${registry.host}/private/web:v1`,
  ]);
  // The private registry listens on a loopback port of its own: allow it (api and agent).
  sys = await startSystem({
    agents: 1,
    runtime: 'runc',
    env: { BERTH_REGISTRY_ALLOW_PRIVATE: `127.0.0.1:5000,${registry.host}` },
    appEnv: { agent: { BERTH_CNI_BRIDGE: 'auto' } },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end().catch(() => undefined);
  const left = await stopRuncSystem(sys);
  await registry?.close();
  expect(left.filter((l) => l.startsWith('container'))).toEqual([]);
});

it('runs an image from a registry that needs credentials, with the project credentials the agent asks the API for', async () => {
  const image = `${registry.host}/private/web:v1`;
  const call = (method: string, path: string, body?: unknown) => api(sys.apiUrl, method, path, body, sys.adminToken, sys.projectSlug);
  // The registry refuses anonymous access, so the API cannot even resolve the tag without credentials.
  await expect(call('POST', '/v1/services', { name: 'secret', image, port: 8080 })).rejects.toThrow(/40[13]|422|credentials|auth/i);
  await call('PUT', `/v1/registry-credentials/${registry.host}`, { username: USER, password: PASSWORD });
  await call('POST', '/v1/services', { name: 'secret', image, port: 8080, scaling: { min: 1, max: 1 } });
  const svc = (await db.query<{ id: string }>(`select id from "Service" where name = 'secret'`)).rows[0]!;
  const ready = await waitFor(
    'the private replica READY',
    async () => (await db.query<{ id: string; address: string; port: number }>(`select id, address, port from "Replica" where "serviceId" = $1 and state = 'READY'`, [svc.id])).rows[0],
    90_000,
  );
  expect((await fetch(`http://${ready.address}:${ready.port}/`, { signal: AbortSignal.timeout(3000) })).status).toBe(200);
  const used = await db.query<{ message: string }>(`select message from "Event" where type = 'registry_credential.used' and "replicaId" = $1`, [ready.id]);
  expect(used.rows).toHaveLength(1);
  expect(used.rows[0]!.message).toContain(`credentials for ${registry.host}`);
  expect(used.rows[0]!.message).not.toContain(PASSWORD);
});
