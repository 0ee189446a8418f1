import { Client } from 'pg';
import { api, startSystem, type RunningSystem, waitForSystem } from '../../support/system';
import { fixtureImage } from '../../support/env';
import { stopRuncSystem } from './leftovers';

/**
 * Real processes end to end: api, scheduler and three runc agents registered through the api with a
 * join token (distinct node names, data dirs, ops ports, one CNI bridge + subnet each). The fixture
 * image runs as 6 replicas spread 2/2/2; SIGKILL of one agent makes its node DOWN and the scheduler
 * places replacements that become READY on the other two.
 */
jest.setTimeout(180_000);

const HEARTBEAT_MS = 500;
let sys: RunningSystem;
let db: Client;

const waitFor = <T>(what: string, fn: () => Promise<T | null | false | undefined>, timeoutMs: number) => waitForSystem(sys, what, fn, timeoutMs);

const readyPerNode = async (serviceId: string) => {
  const r = await db.query<{ name: string; n: string }>(
    `select n.name, count(*) as n from "Replica" r join "Node" n on n.id = r."nodeId" where r."serviceId" = $1 and r.state = 'READY' group by n.name order by n.name`,
    [serviceId],
  );
  return Object.fromEntries(r.rows.map((x) => [x.name, Number(x.n)]));
};

beforeAll(async () => {
  sys = await startSystem({
    agents: 3,
    runtime: 'runc',
    appEnv: {
      scheduler: {
        BERTH_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS),
        BERTH_NODE_DOWN_AFTER_MISSED: '4',
        BERTH_LIVENESS_CHECK_INTERVAL_MS: '200',
        BERTH_RESYNC_INTERVAL_MS: '2000',
        BERTH_MIN_READY_MS: '200',
        BERTH_STOP_GRACE_MS: '1000',
      },
      agent: { BERTH_HEARTBEAT_INTERVAL_MS: String(HEARTBEAT_MS), BERTH_CNI_BRIDGE: 'auto' },
    },
  });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end().catch(() => undefined);
  // SIGTERM in NODE_ENV=test stops every container; anything found afterwards is a bug (and removed).
  const left = await stopRuncSystem(sys);
  expect(left.filter((l) => l.startsWith('container'))).toEqual([]);
});

it('spreads 6 replicas 2/2/2 over three real agents and replaces a SIGKILLed agent’s replicas elsewhere', async () => {
  const nodes = await db.query<{ name: string; status: string }>(`select name, status from "Node" order by name`);
  expect(nodes.rows.map((n) => n.status)).toEqual(['READY', 'READY', 'READY']);
  await api(sys.apiUrl, 'POST', '/v1/services', { name: 'web', image: fixtureImage('web:v1'), port: 8080, scaling: { min: 6, max: 6 } }, sys.adminToken, sys.projectSlug);
  const svc = (await db.query<{ id: string }>(`select id from "Service" where name = 'web'`)).rows[0]!;
  await waitFor('6 READY', async () => Object.values(await readyPerNode(svc.id)).reduce((a, b) => a + b, 0) === 6, 90_000);
  const spread = await readyPerNode(svc.id);
  expect(Object.values(spread)).toEqual([2, 2, 2]);

  // Each READY replica answers on its container address.
  const ready = await db.query<{ address: string; port: number }>(`select address, port from "Replica" where "serviceId" = $1 and state = 'READY'`, [svc.id]);
  for (const r of ready.rows) expect((await fetch(`http://${r.address}:${r.port}/`, { signal: AbortSignal.timeout(3000) })).status).toBe(200);

  const victim = sys.agents[2]!;
  const t0 = Date.now();
  await victim.kill('SIGKILL');
  await waitFor(
    'replacements READY on the surviving nodes',
    async () => {
      const pn = await readyPerNode(svc.id);
      return !pn[victim.name] && Object.values(pn).reduce((a, b) => a + b, 0) === 6;
    },
    60_000,
  );
  const failoverMs = Date.now() - t0;
  console.log(`failover: SIGKILL of ${victim.name} → 6 READY elsewhere in ${failoverMs} ms`);
  const down = await db.query<{ status: string }>(`select status from "Node" where name = $1`, [victim.name]);
  expect(down.rows[0]!.status).toBe('DOWN');
  const lost = await db.query<{ n: string }>(
    `select count(*) as n from "Replica" r join "Node" n on n.id = r."nodeId" where n.name = $1 and r.state = 'LOST'`,
    [victim.name],
  );
  expect(Number(lost.rows[0]!.n)).toBe(2);

  // The agent comes back: its node is READY again and the containers it left behind are stopped.
  const back = await sys.startAgent(victim.name);
  await waitFor('node READY again', async () => (await db.query<{ status: string }>(`select status from "Node" where name = $1`, [back.name])).rows[0]!.status === 'READY', 30_000);
  await waitFor(
    'stale containers removed',
    async () => sys.logs(`agent-${back.name}`).includes('synced with scheduler') && /"stopped":2|"kept":0/.test(sys.logs(`agent-${back.name}`)),
    30_000,
  );
});
