import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { client, expectError, startApi, type ApiHarness, type Client } from './helpers/api-harness';

/**
 * Node join tokens and per-node credentials (issue 13, item 9), against the real api and Postgres:
 * join tokens expire (24 h by default), can be bound to one node, listed (never the secret) and
 * revoked; a join hands the node its own credential; revoking one node's credential makes its next
 * call fail with 401 without touching the other nodes, and only a join token created afterwards
 * re-admits it. The token `npm run up` issues (scripts/issue-join-token.ts) is bound to its node.
 */
jest.setTimeout(60_000);

const run = promisify(execFile);
const capacity = { cpuMillis: 2000, memoryMiB: 4096, pids: 10000 };
const reg = (name: string) => ({ name, address: '10.0.9.1', capacity, agentVersion: '0.1.0' });

describe('node join tokens and node credentials', () => {
  let h: ApiHarness;
  let admin: Client;
  let viewer: Client;

  beforeAll(async () => {
    h = await startApi('berth_api_nodecreds');
    admin = client(h.base, { token: h.adminToken });
    const tok = await admin('POST', '/v1/tokens', { name: 'viewer', role: 'viewer' });
    viewer = client(h.base, { token: tok.body.token });
  });
  afterAll(async () => {
    await h?.close();
  });

  it('creates join tokens with an expiry (24 h by default) and lists them without their secrets', async () => {
    const before = Date.now();
    const def = await admin('POST', '/v1/nodes/join-tokens', { description: 'default ttl' });
    expect(def.status).toBe(201);
    expect(def.body).toMatchObject({ token: expect.stringMatching(/^bjt_/), prefix: def.body.token.slice(0, 10), nodeName: null, useCount: 0 });
    const ttl = new Date(def.body.expiresAt).getTime() - before;
    expect(ttl).toBeGreaterThan(24 * 3600_000 - 60_000);
    expect(ttl).toBeLessThanOrEqual(24 * 3600_000 + 60_000);
    const short = await admin('POST', '/v1/nodes/join-tokens', { ttlSeconds: 600, nodeName: 'bound-1' });
    expect(new Date(short.body.expiresAt).getTime() - before).toBeLessThanOrEqual(600_000 + 60_000);

    expectError(await admin('POST', '/v1/nodes/join-tokens', { ttlSeconds: 10 }), 400, 'VALIDATION', /ttlSeconds/);
    expectError(await admin('POST', '/v1/nodes/join-tokens', { nodeName: 'Not A Name' }), 400, 'VALIDATION', /nodeName/);
    expectError(await viewer('GET', '/v1/nodes/join-tokens'), 403, 'FORBIDDEN', /operator/);

    const list = await admin('GET', '/v1/nodes/join-tokens');
    expect(list.status).toBe(200);
    const ids = list.body.items.map((t: any) => t.id);
    expect(ids).toEqual(expect.arrayContaining([def.body.id, short.body.id]));
    const text = JSON.stringify(list.body);
    expect(text).not.toContain(def.body.token);
    expect(text).not.toContain(short.body.token);
    expect(text).not.toContain('tokenHash');
    expect(list.body.items.find((t: any) => t.id === short.body.id)).toMatchObject({
      prefix: short.body.prefix,
      nodeName: 'bound-1',
      expiresAt: short.body.expiresAt,
      usedAt: null,
      usedBy: null,
      revokedAt: null,
    });
  });

  it('a bound token joins only its node; each join hands out a credential the node uses from then on', async () => {
    const jt = await admin('POST', '/v1/nodes/join-tokens', { nodeName: 'bound-2' });
    const joiner = client(h.base, { token: jt.body.token });
    expectError(await joiner('POST', '/v1/nodes/register', reg('intruder')), 403, 'FORBIDDEN', /bound to node 'bound-2'/);
    const joined = await joiner('POST', '/v1/nodes/register', reg('bound-2'));
    expect(joined.status).toBe(200);
    expect(joined.body.credential).toMatch(/^bnc_[A-Za-z0-9_-]{43}$/);
    const node = client(h.base, { token: joined.body.credential });
    // Returning with the credential: same node, no new credential.
    const back = await node('POST', '/v1/nodes/register', reg('bound-2'));
    expect(back.body).toEqual({ nodeId: joined.body.nodeId, heartbeatIntervalMs: 2000, network: joined.body.network });
    expectError(await node('POST', '/v1/nodes/register', reg('someone-else')), 403, 'FORBIDDEN', /credential of node 'bound-2'/);
    // A node credential is not an API token.
    expectError(await node('GET', '/v1/nodes'), 401, 'UNAUTHENTICATED');

    const row = (await admin('GET', '/v1/nodes/join-tokens')).body.items.find((t: any) => t.id === jt.body.id);
    expect(row).toMatchObject({ usedBy: 'bound-2', useCount: 1, usedAt: expect.any(String) });
    const listed = (await viewer('GET', '/v1/nodes')).body.items.find((n: any) => n.name === 'bound-2');
    expect(listed.credential).toEqual({ prefix: joined.body.credential.slice(0, 10), issuedAt: expect.any(String), revokedAt: null });
  });

  it('expired and revoked join tokens are refused with a reason', async () => {
    const jt = await admin('POST', '/v1/nodes/join-tokens', { description: 'to expire' });
    await h.prisma.client.nodeJoinToken.update({ where: { id: jt.body.id }, data: { expiresAt: new Date(Date.now() - 1000) } });
    expectError(await client(h.base, { token: jt.body.token })('POST', '/v1/nodes/register', reg('late')), 401, 'UNAUTHENTICATED', /expired at .*new one/);

    const jt2 = await admin('POST', '/v1/nodes/join-tokens', { description: 'to revoke' });
    expect((await client(h.base, { token: jt2.body.token })('POST', '/v1/nodes/register', reg('early'))).status).toBe(200);
    expectError(await viewer('DELETE', `/v1/nodes/join-tokens/${jt2.body.id}`), 403, 'FORBIDDEN');
    expect((await admin('DELETE', `/v1/nodes/join-tokens/${jt2.body.id}`)).status).toBe(204);
    expect((await admin('DELETE', `/v1/nodes/join-tokens/${jt2.body.id}`)).status).toBe(204);
    expectError(await admin('DELETE', '/v1/nodes/join-tokens/00000000-0000-4000-8000-000000000000'), 404, 'NOT_FOUND');
    expectError(await admin('DELETE', '/v1/nodes/join-tokens/nope'), 404, 'NOT_FOUND');
    expectError(await client(h.base, { token: jt2.body.token })('POST', '/v1/nodes/register', reg('early')), 401, 'UNAUTHENTICATED', /revoked at/);
    const row = (await admin('GET', '/v1/nodes/join-tokens')).body.items.find((t: any) => t.id === jt2.body.id);
    expect(row.revokedAt).toEqual(expect.any(String));
    const types = (await h.prisma.client.event.findMany({ where: { type: { startsWith: 'node.join_token' } } })).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['node.join_token_created', 'node.join_token_revoked']));
  });

  it('revoking one node fails its next call with 401 and drains it; other nodes keep working; only a newer join token re-admits it', async () => {
    const jt = await admin('POST', '/v1/nodes/join-tokens', { description: 'fleet' });
    const joiner = client(h.base, { token: jt.body.token });
    const a = (await joiner('POST', '/v1/nodes/register', reg('rev-a'))).body;
    const b = (await joiner('POST', '/v1/nodes/register', reg('rev-b'))).body;
    expect(a.credential).not.toBe(b.credential);
    const nodeA = client(h.base, { token: a.credential });
    const nodeB = client(h.base, { token: b.credential });

    expectError(await viewer('POST', '/v1/nodes/rev-a/revoke'), 403, 'FORBIDDEN');
    expectError(await admin('POST', '/v1/nodes/ghost/revoke'), 404, 'NOT_FOUND');
    const revoked = await admin('POST', '/v1/nodes/rev-a/revoke');
    expect(revoked.status).toBe(200);
    expect(revoked.body).toEqual({ name: 'rev-a', status: 'DRAINING', credentialRevokedAt: expect.any(String) });

    expectError(await nodeA('POST', '/v1/nodes/register', reg('rev-a')), 401, 'UNAUTHENTICATED', /credential of node 'rev-a' was revoked/);
    expectError(await nodeA('POST', `/v1/nodes/${a.nodeId}/pull-credentials`, { replicaId: '00000000-0000-4000-8000-000000000000', registry: '127.0.0.1:5000' }), 401, 'UNAUTHENTICATED', /revoked/);
    // The other node is untouched.
    expect((await nodeB('POST', '/v1/nodes/register', reg('rev-b'))).status).toBe(200);
    const nodes = (await viewer('GET', '/v1/nodes')).body.items;
    expect(nodes.find((n: any) => n.name === 'rev-a')).toMatchObject({ status: 'DRAINING', credential: { revokedAt: expect.any(String) } });
    expect(nodes.find((n: any) => n.name === 'rev-b')).toMatchObject({ status: 'READY', credential: { revokedAt: null } });
    expectError(await admin('POST', '/v1/nodes/rev-a/undrain'), 409, 'CONFLICT', /revoked.*re-join/);
    // Revoking again changes nothing.
    expect((await admin('POST', '/v1/nodes/rev-a/revoke')).body.credentialRevokedAt).toBe(revoked.body.credentialRevokedAt);

    // The join token it came with is older than the revocation: it cannot bring the node back.
    expectError(await joiner('POST', '/v1/nodes/register', reg('rev-a')), 401, 'UNAUTHENTICATED', /older: create a new one/);
    const fresh = await admin('POST', '/v1/nodes/join-tokens', { nodeName: 'rev-a' });
    const again = await client(h.base, { token: fresh.body.token })('POST', '/v1/nodes/register', reg('rev-a'));
    expect(again.status).toBe(200);
    expect(again.body.nodeId).toBe(a.nodeId);
    expect(again.body.credential).not.toBe(a.credential);
    expectError(await nodeA('POST', '/v1/nodes/register', reg('rev-a')), 401, 'UNAUTHENTICATED');
    expect((await client(h.base, { token: again.body.credential })('POST', '/v1/nodes/register', reg('rev-a'))).status).toBe(200);
    expect((await admin('POST', '/v1/nodes/rev-a/undrain')).body.status).toBe('READY');

    const events = await h.prisma.client.event.findMany({ where: { nodeId: a.nodeId }, orderBy: { id: 'asc' } });
    expect(events.map((e) => e.type)).toEqual(['node.registered', 'node.revoked', 'node.draining', 'node.rejoined', 'node.reregistered', 'node.undrained']);
  });

  it('the token `npm run up` issues for its local agent (scripts/issue-join-token.ts) is bound to that node and expires', async () => {
    const repo = path.resolve(__dirname, '../../..');
    const { stdout } = await run(process.execPath, ['-r', '@swc-node/register', 'scripts/issue-join-token.ts', '--node', 'local-1', '--ttl', '3600', 'local agent (npm run up)'], {
      cwd: repo,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, DATABASE_URL: h.config.DATABASE_URL, NODE_ENV: 'test' },
    });
    const token = stdout.trim();
    expect(token).toMatch(/^bjt_/);
    const joiner = client(h.base, { token });
    expectError(await joiner('POST', '/v1/nodes/register', reg('not-local')), 403, 'FORBIDDEN', /bound to node 'local-1'/);
    expect((await joiner('POST', '/v1/nodes/register', reg('local-1'))).body.credential).toMatch(/^bnc_/);
    const row = (await admin('GET', '/v1/nodes/join-tokens')).body.items.find((t: any) => t.prefix === token.slice(0, 10));
    expect(row).toMatchObject({ nodeName: 'local-1', description: 'local agent (npm run up)', usedBy: 'local-1' });
    expect(new Date(row.expiresAt).getTime() - new Date(row.createdAt).getTime()).toBe(3600_000);
  });
});
