import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { parseNodeCommand } from '@berth/contracts';
import { cidrContains } from '@berth/scheduling';
import { api, startSystem, type RunningSystem, waitForSystem } from '../../support/system';
import { fixtureImage } from '../../support/env';
import { stopRuncSystem } from './leftovers';

/**
 * The pod network with real processes on one host: three runc agents join through the api; each
 * gets its own subnet of the system's cluster range and its CNI bridge uses it (every replica's
 * address lies in its node's subnet); the edge node (BERTH_NODE_SCHEDULABLE=false) is a peer but
 * never gets a replica; every agent receives the scheduler's network-sync (peers = the other two,
 * the project's replica addresses) and keeps it in its data dir; an agent restarted keeps its subnet.
 */
jest.setTimeout(180_000);

let sys: RunningSystem;
let db: Client;
const waitFor = <T>(what: string, fn: () => Promise<T | null | false | undefined>, timeoutMs = 60_000) => waitForSystem(sys, what, fn, timeoutMs);
const nodes = async () => (await api(sys.apiUrl, 'GET', '/v1/nodes', undefined, sys.adminToken)).items as any[];
const savedState = (name: string) => {
  try {
    const cmd = parseNodeCommand(JSON.parse(fs.readFileSync(path.join(sys.dataDir, `agent-${name}`, 'network', 'network-state.json'), 'utf8')));
    return cmd.kind === 'network-sync' ? cmd : null;
  } catch {
    return null;
  }
};

beforeAll(async () => {
  sys = await startSystem({
    agents: 2,
    runtime: 'runc',
    appEnv: { scheduler: { BERTH_RESYNC_INTERVAL_MS: '2000', BERTH_MIN_READY_MS: '200' }, agent: { BERTH_CNI_BRIDGE: 'auto' } },
  });
  await sys.startAgent(undefined, { env: { BERTH_NODE_SCHEDULABLE: 'false' } });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end().catch(() => undefined);
  const left = await stopRuncSystem(sys);
  expect(left.filter((l) => l.startsWith('container'))).toEqual([]);
});

it('distinct subnets from the cluster range; replicas get addresses of their node’s subnet; the edge node gets none; every agent gets the sync', async () => {
  const listed = await nodes();
  expect(listed).toHaveLength(3);
  const cluster = sys.clusterCidr;
  const cidrs = listed.map((n) => n.network.podCidr as string);
  expect(new Set(cidrs).size).toBe(3);
  for (const c of cidrs) expect(cidrContains(cluster, c.split('/')[0]!)).toBe(true);
  const edge = listed.find((n) => n.name === sys.agents[2]!.name)!;
  expect(edge.schedulable).toBe(false);

  await api(sys.apiUrl, 'POST', '/v1/services', { name: 'web', image: fixtureImage('web:v1'), port: 8080, scaling: { min: 4, max: 4 } }, sys.adminToken, sys.projectSlug);
  const svc = (await db.query<{ id: string; projectId: string }>(`select id, "projectId" from "Service" where name = 'web'`)).rows[0]!;
  const ready = async () =>
    (
      await db.query<{ address: string; port: number; node: string; podCidr: string }>(
        `select r.address, r.port, n.name as node, n."podCidr" from "Replica" r join "Node" n on n.id = r."nodeId" where r."serviceId" = $1 and r.state = 'READY'`,
        [svc.id],
      )
    ).rows;
  await waitFor('4 READY', async () => (await ready()).length === 4, 90_000);
  for (const r of await ready()) {
    expect(r.node).not.toBe(edge.name);
    expect(cidrContains(r.podCidr, r.address)).toBe(true);
    expect((await fetch(`http://${r.address}:${r.port}/`, { signal: AbortSignal.timeout(3000) })).status).toBe(200);
  }
  const addresses = (await ready()).map((r) => r.address).sort();
  for (const a of sys.agents) {
    const state = await waitFor(`${a.name}'s network state lists the replicas`, async () => {
      const s = savedState(a.name);
      return s && [...(s.projects[svc.projectId] ?? [])].sort().join() === addresses.join() ? s : null;
    });
    expect(state.peers.map((p) => p.nodeName).sort()).toEqual(sys.agents.filter((x) => x.name !== a.name).map((x) => x.name).sort());
    expect(state.clusterCidr).toBe(cluster);
  }
});

it('a restarted agent keeps its subnet', async () => {
  const a = sys.agents[0]!;
  const before = (await nodes()).find((n) => n.name === a.name)!.network.podCidr;
  await a.kill('SIGTERM');
  await sys.startAgent(a.name);
  const after = (await nodes()).find((n) => n.name === a.name)!.network.podCidr;
  expect(after).toBe(before);
});
