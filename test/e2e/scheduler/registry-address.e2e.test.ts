import net from 'node:net';
import { Client } from 'pg';
import { startSystem, type RunningSystem } from '../../support/system';
import { REGISTRY } from '../../integration/oci/helpers/image-builder';
import { startProxy, type TestServer } from '../../integration/oci/helpers/servers';
import { stopRuncSystem } from './leftovers';

/**
 * Registry references cannot probe the network (issue 13, item 10), against the real processes:
 *  - the api refuses `127.0.0.1:<port>/x:v1` and `localhost:<port>/x:v1` for a loopback listener
 *    that is not on its allow-list with a 422 naming the rule, records the attempt on the project's
 *    timeline, and the listener sees no connection at all;
 *  - the agent applies the same rules when it pulls: a registry only the api is allowed to reach
 *    (a proxy to the local registry on another loopback port) resolves at the api, but the agent
 *    refuses to pull from it and the replica fails with the rule in its reason, the proxy seeing no
 *    request from the agent.
 * All traffic stays on loopback.
 */
jest.setTimeout(180_000);

let sys: RunningSystem;
let db: Client;
let trap: { port: number; connections: number; close(): Promise<void> };
let apiOnly: TestServer;

async function countingListener() {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.destroy();
  });
  const state = {
    port: 0,
    connections: 0,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}

beforeAll(async () => {
  trap = await countingListener();
  apiOnly = await startProxy(REGISTRY);
  sys = await startSystem({
    agents: 1,
    runtime: 'runc',
    appEnv: {
      api: { BERTH_REGISTRY_ALLOW_PRIVATE: `127.0.0.1:5000,localhost:5000,${apiOnly.host}` },
      agent: { BERTH_CNI_BRIDGE: 'auto' },
    },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end().catch(() => undefined);
  if (sys) await stopRuncSystem(sys);
  await apiOnly?.close();
  await trap?.close();
});

async function call(method: string, path: string, body?: unknown) {
  const r = await fetch(`${sys.apiUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${sys.adminToken}`, 'content-type': 'application/json', 'x-berth-project': sys.projectSlug },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : undefined };
}

it('the api refuses a loopback registry that is not allowed, naming the rule, without connecting to it', async () => {
  const byIp = await call('POST', '/v1/images', { reference: `127.0.0.1:${trap.port}/x:v1` });
  expect(byIp.status).toBe(422);
  expect(byIp.body.error).toMatchObject({
    code: 'REGISTRY_ADDRESS_REFUSED',
    message: expect.stringMatching(/rule: loopback.*BERTH_REGISTRY_ALLOW_PRIVATE/),
    details: { rule: 'loopback', host: '127.0.0.1', address: '127.0.0.1' },
  });
  const byName = await call('POST', '/v1/services', { name: 'probe', image: `localhost:${trap.port}/x:v1`, port: 8080 });
  expect(byName.status).toBe(422);
  expect(byName.body.error).toMatchObject({ code: 'REGISTRY_ADDRESS_REFUSED', details: { rule: 'loopback', host: 'localhost' } });
  expect(trap.connections).toBe(0);

  const events = await db.query<{ type: string; level: string; data: { rule: string; reference: string } }>(
    `select type, level, data from "Event" where type = 'image.address_refused' order by id`,
  );
  expect(events.rows.map((e) => [e.level, e.data.rule, e.data.reference])).toEqual([
    ['WARN', 'loopback', `127.0.0.1:${trap.port}/x:v1`],
    ['WARN', 'loopback', `localhost:${trap.port}/x:v1`],
  ]);
  // No service was created for the refused image.
  expect((await call('GET', '/v1/services/probe')).status).toBe(404);
});

it('the agent applies the same rules when it pulls', async () => {
  const image = `${apiOnly.host}/berth-fixtures/web:v1`;
  const created = await call('POST', '/v1/services', { name: 'via-proxy', image, port: 8080, scaling: { min: 1, max: 1 } });
  expect(created.status).toBe(201);
  const seenByApi = apiOnly.requests.length;
  expect(seenByApi).toBeGreaterThan(0); // the api resolved the tag through the proxy

  const deadline = Date.now() + 90_000;
  let failed: { lastExitReason: string } | undefined;
  while (!failed && Date.now() < deadline) {
    failed = (
      await db.query<{ lastExitReason: string }>(
        `select r."lastExitReason" from "Replica" r join "Service" s on s.id = r."serviceId" where s.name = 'via-proxy' and r.state = 'FAILED'`,
      )
    ).rows[0];
    if (!failed) await new Promise((r) => setTimeout(r, 200));
  }
  expect(failed?.lastExitReason).toMatch(/image pull failed: .*rule: loopback/);
  expect(apiOnly.requests.length).toBe(seenByApi);
});
