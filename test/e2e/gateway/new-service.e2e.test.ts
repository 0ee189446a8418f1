import { Client } from 'pg';
import { RunningSystem, api, startSystem } from '../../support/system';
import { fixtureImage } from '../../support/env';
import { Reply, closeClientAgent, request, waitFor } from '../../integration/gateway/upstreams';

/**
 * A service that exists never answers 404 at the gateway (issue 13, item 6): a request sent the
 * moment `POST /v1/services` answered 201, or the moment a deploy was reported ACTIVE, is routed
 * (held while the service starts), not refused because the routing table has not caught up yet.
 * Whole system: api, scheduler, gateway and one runc agent.
 */
let sys: RunningSystem;
let db: Client;
const created: string[] = [];

const call = (method: string, path: string, body?: unknown) => api(sys.apiUrl, method, path, body, sys.adminToken, sys.projectSlug);
const get = (service: string, path = '/version') => request(sys.gatewayPort, `${service}.${sys.projectSlug}.localhost`, { path });
const show = (r: Reply) => `${r.status} ${r.body.slice(0, 300)}`;

beforeAll(async () => {
  sys = await startSystem({
    agents: 1,
    // A cold start on a busy machine (first pull included) must fit in the cold-start hold.
    env: { BERTH_GATEWAY_HOLD_TIMEOUT_MS: '60000' },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
}, 120_000);

afterAll(async () => {
  if (sys && db) {
    for (const n of created) await call('DELETE', `/v1/services/${n}`).catch(() => undefined);
    await waitFor(
      'all replicas stopped',
      async () => Number((await db.query<{ n: string }>(`select count(*) as n from "Replica" where state not in ('STOPPED', 'FAILED', 'LOST', 'EXITED')`)).rows[0].n) === 0,
      45_000,
      250,
    ).catch((e: Error) => console.warn(`e2e/new-service: ${e.message}`));
  }
  await db?.end();
  await sys?.stop();
  closeClientAgent();
}, 120_000);

it('a request sent right after POST /v1/services answered 201 is routed, never 404 (5 services, scaled to zero or not)', async () => {
  const replies: string[] = [];
  for (let i = 0; i < 5; i++) {
    const name = `fresh-${i}`;
    const min = i % 2; // at zero (a wake-up) and with one replica on its way
    await call('POST', '/v1/services', { name, image: fixtureImage('web:v1'), port: 8080, scaling: { min, max: 1 } });
    created.push(name);
    // No sleep: the very next thing is the request.
    const r = await get(name);
    replies.push(`${name}: ${show(r).trim()}`);
    // Room on the one node for the next ones.
    await call('DELETE', `/v1/services/${name}`);
  }
  expect(replies).toEqual(replies.map((_r, i) => `fresh-${i}: 200 v1`));
}, 240_000);

it('a request sent right after a deploy was reported ACTIVE is routed to the new revision, never 404', async () => {
  // What `berth deploy` does for a new service: create, follow until the revision is ACTIVE, return.
  for (let i = 0; i < 3; i++) {
    const name = `deployed-${i}`;
    await call('POST', '/v1/services', { name, image: fixtureImage('web:v1'), port: 8080, scaling: { min: 1, max: 1 } });
    created.push(name);
    await waitFor('revision 1 ACTIVE', async () => (await call('GET', `/v1/services/${name}`)).activeRevision?.status === 'ACTIVE', 90_000, 50);
    const first = await get(name);
    expect(`${name} after create: ${show(first).trim()}`).toBe(`${name} after create: 200 v1`);
    if (i > 0) await call('DELETE', `/v1/services/${name}`);
  }
  // And a deploy of a new image to a running service: right after it is ACTIVE, v2 answers.
  const name = 'deployed-0';
  const dep = await call('POST', `/v1/services/${name}/deployments`, { image: fixtureImage('web:v2') });
  await waitFor(
    `revision ${dep.revision.number} ACTIVE`,
    async () => {
      const s = await call('GET', `/v1/services/${name}`);
      return s.activeRevision?.number === dep.revision.number && s.activeRevision?.status === 'ACTIVE';
    },
    90_000,
    50,
  );
  const after = await get(name);
  expect(after.status).not.toBe(404);
  expect(after.status).toBe(200);
}, 360_000);
