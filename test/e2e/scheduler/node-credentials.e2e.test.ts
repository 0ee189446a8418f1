import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from 'pg';
import { api, startSystem, type RunningSystem } from '../../support/system';

/**
 * Per-node credentials with real agent processes (issue 13, item 9): each agent exchanges the join
 * token for its own credential at its first start, keeps it in its data dir (0600) and uses it from
 * then on; revoking one node makes that node's calls fail with 401 — a restarted agent of that node
 * cannot come back, not even with the old join token — while the other node keeps working and
 * restarts with its credential; a join token created after the revocation re-admits the node.
 * Hollow agents: the auth path is the same as with runc, without containers.
 */
jest.setTimeout(180_000);

let sys: RunningSystem;
let db: Client;

beforeAll(async () => {
  sys = await startSystem({ agents: 2, runtime: 'hollow' });
  db = new Client({ connectionString: sys.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end().catch(() => undefined);
  await sys?.stop();
});

const credentialFile = (name: string) => path.join(sys.dataDir, `agent-${name}`, 'node-credential');
const readCredential = (name: string) => fs.readFileSync(credentialFile(name), 'utf8').trim();
const sha256 = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

async function registerWith(bearer: string, name: string): Promise<number> {
  const r = await fetch(`${sys.apiUrl}/v1/nodes/register`, {
    method: 'POST',
    headers: { authorization: `Bearer ${bearer}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name, address: '127.0.0.1', capacity: { cpuMillis: 1000, memoryMiB: 1024, pids: 1000 }, agentVersion: '0.1.0' }),
  });
  await r.text();
  return r.status;
}

it('each agent joins once, keeps its own credential (0600) and uses it; revoking one node does not touch the other', async () => {
  const [a, b] = sys.agents.map((x) => x.name) as [string, string];
  const credA = readCredential(a);
  const credB = readCredential(b);
  expect(credA).toMatch(/^bnc_/);
  expect(credB).toMatch(/^bnc_/);
  expect(credA).not.toBe(credB);
  for (const n of [a, b]) expect(fs.statSync(credentialFile(n)).mode & 0o777).toBe(0o600);
  const rows = (await db.query<{ name: string; credentialHash: string }>(`select name, "credentialHash" from "Node" order by name`)).rows;
  expect(rows).toEqual([
    { name: a, credentialHash: sha256(credA) },
    { name: b, credentialHash: sha256(credB) },
  ]);
  const tokens = await api(sys.apiUrl, 'GET', '/v1/nodes/join-tokens', undefined, sys.adminToken);
  expect(tokens.items).toEqual([expect.objectContaining({ useCount: 2 })]);

  // Revoke node a.
  const revoked = await api(sys.apiUrl, 'POST', `/v1/nodes/${a}/revoke`, undefined, sys.adminToken);
  expect(revoked).toMatchObject({ name: a, status: 'DRAINING' });
  expect(await registerWith(credA, a)).toBe(401);
  expect(await registerWith(credB, b)).toBe(200);

  // A restarted agent of node a cannot come back: its credential is revoked and the join token it
  // still has is older than the revocation. It stops with a message saying what to do.
  await sys.agents[0]!.kill('SIGTERM');
  const err = await sys.startAgent(a).catch((e: Error) => e);
  expect(err).toBeInstanceOf(Error);
  expect((err as Error).message).toMatch(/process exited with 78/);
  expect((err as Error).message).toMatch(/revoked at .*this join token is older: create a new one/);
  expect(readCredential(a)).toBe(credA);

  // Node b restarts with its own credential: no new join, same credential.
  await sys.agents[1]!.kill('SIGTERM');
  await sys.startAgent(b);
  expect(readCredential(b)).toBe(credB);
  const bEvents = (await db.query<{ type: string }>(`select e.type from "Event" e join "Node" n on n.id = e."nodeId" where n.name = $1 and e.type like 'node.%' order by e.id`, [b])).rows;
  expect(bEvents.map((e) => e.type)).toEqual(['node.registered', 'node.reregistered', 'node.reregistered']);

  // A join token created after the revocation re-admits node a with a new credential.
  const fresh = await api(sys.apiUrl, 'POST', '/v1/nodes/join-tokens', { nodeName: a }, sys.adminToken);
  await sys.startAgent(a, { joinToken: fresh.token });
  const newA = readCredential(a);
  expect(newA).not.toBe(credA);
  expect(fs.statSync(credentialFile(a)).mode & 0o777).toBe(0o600);
  const nodeA = (await db.query<{ credentialHash: string; credentialRevokedAt: Date | null }>(`select "credentialHash", "credentialRevokedAt" from "Node" where name = $1`, [a])).rows[0]!;
  expect(nodeA).toEqual({ credentialHash: sha256(newA), credentialRevokedAt: null });
  expect(await registerWith(credA, a)).toBe(401);
  expect(await registerWith(credB, b)).toBe(200);
});
