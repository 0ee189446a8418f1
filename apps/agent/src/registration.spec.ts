import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { joinOrReturn, NodeCredentialFile, RegistrationError, type NodeRegistrationRequest, type registerNode } from './registration';

const req: NodeRegistrationRequest = { name: 'n1', address: '127.0.0.1', labels: {}, capacity: { cpuMillis: 1000, memoryMiB: 1024, pids: 100 }, agentVersion: '0.1.0' };

function refused(status: number): RegistrationError {
  const e = new RegistrationError(`registration refused: ${status} nope`, false);
  e.status = status;
  return e;
}

const network = { mode: 'host-gw' as const, clusterCidr: '10.88.0.0/16', podCidr: '10.88.0.0/24', wireguardPort: 51820 };

describe('joinOrReturn', () => {
  let dir: string;
  let store: NodeCredentialFile;
  let calls: string[];
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-agent-cred-'));
    store = new NodeCredentialFile(path.join(dir, 'agent-n1'));
    calls = [];
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const api =
    (answers: Record<string, () => Awaited<ReturnType<typeof registerNode>>>): typeof registerNode =>
    async (_url, bearer) => {
      calls.push(bearer);
      return answers[bearer]!();
    };

  it('joins with the join token once, keeps the credential (0600) and returns with it afterwards', async () => {
    const register = api({ bjt_join: () => ({ nodeId: 'id1', heartbeatIntervalMs: 2000, credential: 'bnc_one', network }), bnc_one: () => ({ nodeId: 'id1', heartbeatIntervalMs: 2000, network }) });
    expect(await joinOrReturn({ apiUrl: 'http://api', joinToken: 'bjt_join', store, req, register })).toEqual({ nodeId: 'id1', heartbeatIntervalMs: 2000, credential: 'bnc_one', network });
    expect(fs.readFileSync(store.path, 'utf8')).toBe('bnc_one\n');
    expect(fs.statSync(store.path).mode & 0o777).toBe(0o600);
    expect(await joinOrReturn({ apiUrl: 'http://api', joinToken: 'bjt_join', store, req, register })).toMatchObject({ credential: 'bnc_one' });
    expect(calls).toEqual(['bjt_join', 'bnc_one']);
  });

  it('a refused (401) credential: joins again only with a join token, else stops saying what to do', async () => {
    store.write('bnc_old');
    const register = api({
      bnc_old: () => {
        throw refused(401);
      },
      bjt_new: () => ({ nodeId: 'id1', heartbeatIntervalMs: 2000, credential: 'bnc_new', network }),
    });
    const err = await joinOrReturn({ apiUrl: 'http://api', joinToken: undefined, store, req, register }).catch((e) => e);
    expect(err).toBeInstanceOf(RegistrationError);
    expect(err.message).toMatch(/refused the credential in .*node-credential.*BERTH_JOIN_TOKEN/);
    expect(await joinOrReturn({ apiUrl: 'http://api', joinToken: 'bjt_new', store, req, register })).toMatchObject({ credential: 'bnc_new' });
    expect(store.read()).toBe('bnc_new');
  });

  it('other refusals of the credential are not papered over with the join token', async () => {
    store.write('bnc_x');
    const register = api({
      bnc_x: () => {
        throw refused(403);
      },
    });
    await expect(joinOrReturn({ apiUrl: 'http://api', joinToken: 'bjt_y', store, req, register })).rejects.toThrow(/403/);
    expect(calls).toEqual(['bnc_x']);
  });

  it('without a credential or a join token, or when the join answer has no credential, it stops', async () => {
    await expect(joinOrReturn({ apiUrl: 'http://api', joinToken: undefined, store, req, register: api({}) })).rejects.toThrow(/no node credential .* no BERTH_JOIN_TOKEN.*--node n1/);
    const register = api({ bjt_z: () => ({ nodeId: 'id1', heartbeatIntervalMs: 2000, network }) });
    await expect(joinOrReturn({ apiUrl: 'http://api', joinToken: 'bjt_z', store, req, register })).rejects.toThrow(/without a node credential/);
    expect(store.read()).toBeUndefined();
  });

  describe('the node\'s own Redis user', () => {
    const seen: (string | undefined)[] = [];
    const redisApi = (password?: () => string | undefined): typeof registerNode => async (_url, bearer, r) => {
      seen.push(r.redis);
      const pw = password?.();
      const redis = { url: 'rediss://cp:6380', username: 'berth-node-id1', ...(pw ? { password: pw } : {}) };
      return bearer.startsWith('bjt_') ? { nodeId: 'id1', heartbeatIntervalMs: 2000, credential: 'bnc_one', redis, network } : { nodeId: 'id1', heartbeatIntervalMs: 2000, redis, network };
    };
    beforeEach(() => (seen.length = 0));

    it('a join asks for a password and keeps it (0600); a return keeps it and gets none', async () => {
      let issued: string | undefined = 'p'.repeat(43);
      const register = redisApi(() => issued);
      expect((await joinOrReturn({ apiUrl: 'http://api', joinToken: 'bjt_join', store, req, register })).redis).toEqual({ url: 'rediss://cp:6380', username: 'berth-node-id1', password: 'p'.repeat(43) });
      expect(fs.statSync(store.redisPasswordPath).mode & 0o777).toBe(0o600);
      issued = undefined;
      expect((await joinOrReturn({ apiUrl: 'http://api', joinToken: 'bjt_join', store, req, register })).redis?.password).toBe('p'.repeat(43));
      expect(seen).toEqual(['issue', 'keep']);
    });

    it('a lost password file, or one Redis refused, is replaced by a new one', async () => {
      store.write('bnc_one');
      let n = 0;
      const register = redisApi(() => (seen.at(-1) === 'issue' ? `${++n}`.repeat(20) : undefined));
      expect((await joinOrReturn({ apiUrl: 'http://api', joinToken: undefined, store, req, register })).redis?.password).toBe('1'.repeat(20));
      expect((await joinOrReturn({ apiUrl: 'http://api', joinToken: undefined, store, req, register, forceIssue: true })).redis?.password).toBe('2'.repeat(20));
      expect(store.readRedisPassword()).toBe('2'.repeat(20));
      expect(seen).toEqual(['issue', 'issue']);
    });

    it('`none` (simulated nodes sharing a connection) asks for no user; an api without ACL answers none', async () => {
      const register = redisApi(() => 'x'.repeat(20));
      await joinOrReturn({ apiUrl: 'http://api', joinToken: 'bjt_join', store, req: { ...req, redis: 'none' }, register });
      expect(seen).toEqual(['none']);
      const off: typeof registerNode = async () => ({ nodeId: 'id1', heartbeatIntervalMs: 2000, network });
      expect((await joinOrReturn({ apiUrl: 'http://api', joinToken: 'bjt_join', store, req, register: off })).redis).toBeUndefined();
    });
  });
});
