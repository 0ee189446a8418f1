import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Agent, request } from 'undici';
import { guardedConnector, ImagePuller, parseAllowList, parseReference, RegistryAddressRefusedError, RegistryClient } from '@berth/oci';
import { REGISTRY } from './helpers/image-builder';
import { startProxy, startServer, type TestServer } from './helpers/servers';

/**
 * The registry address policy at connect time, against real loopback sockets only: a listener the
 * policy does not allow must see no connection at all, whether it is named by IP, by a name that
 * resolves to it, by a redirect or by a token-server realm. (No test traffic leaves loopback: the
 * metadata and link-local rules are covered by the unit spec of address-policy.ts.)
 */

interface Listener {
  port: number;
  connections: number;
  close(): Promise<void>;
}

/** A bare TCP listener on 127.0.0.1 that counts accepted connections and answers nothing. */
async function countingListener(): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  const state: Listener = { port: 0, connections: 0, close: async () => undefined };
  const server = net.createServer((s) => {
    state.connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    s.destroy();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  state.port = (server.address() as net.AddressInfo).port;
  state.close = () =>
    new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    });
  return state;
}

const fast = { retries: 0, timeoutMs: 3000 };

describe('registry address policy (connect-time, loopback only)', () => {
  let trap: Listener;
  const closers: (() => Promise<void>)[] = [];
  beforeEach(async () => {
    trap = await countingListener();
    closers.push(trap.close);
  });
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
  });

  it('refuses a loopback registry that is not allowed, by IP and by name, before connecting', async () => {
    const c = new RegistryClient(fast);
    try {
      for (const host of [`127.0.0.1:${trap.port}`, `localhost:${trap.port}`]) {
        const err = await c.resolve(parseReference(`${host}/x:v1`)).catch((e) => e);
        expect(err).toBeInstanceOf(RegistryAddressRefusedError);
        expect(err).toMatchObject({ code: 'REGISTRY_ADDRESS_REFUSED', rule: 'loopback' });
        expect(err.message).toMatch(/rule: loopback/);
        expect(err.message).toMatch(/BERTH_REGISTRY_ALLOW_PRIVATE/);
      }
      expect(trap.connections).toBe(0);
    } finally {
      await c.close();
    }
  });

  it('connects when the allow-list covers the address (the same listener sees the attempt)', async () => {
    for (const allow of [[`127.0.0.1:${trap.port}`], ['127.0.0.0/8'], [`localhost:${trap.port}`]]) {
      const c = new RegistryClient({ ...fast, allowPrivate: allow });
      const host = allow[0]!.startsWith('localhost') ? `localhost:${trap.port}` : `127.0.0.1:${trap.port}`;
      const err = await c.resolve(parseReference(`${host}/x:v1`)).catch((e) => e);
      expect(err).not.toBeInstanceOf(RegistryAddressRefusedError);
      await c.close();
    }
    expect(trap.connections).toBeGreaterThanOrEqual(3);
  });

  it('keeps the local registry 127.0.0.1:5000 allowed by default', async () => {
    const c = new RegistryClient(fast);
    try {
      const r = await c.resolve(parseReference(`${REGISTRY}/berth-fixtures/web:v1`));
      expect(r.digest).toMatch(/^sha256:/);
    } finally {
      await c.close();
    }
  });

  it('checks redirect targets and token-server realms too', async () => {
    let redirector: TestServer | undefined;
    let challenger: TestServer | undefined;
    try {
      // An allowed registry that redirects its manifests to the trap.
      redirector = await startServer((req, res) => {
        res.writeHead(307, { location: `http://127.0.0.1:${trap.port}${req.url}` });
        res.end();
      });
      const c1 = new RegistryClient({ ...fast, allowPrivate: [redirector.host] });
      const e1 = await c1.resolve(parseReference(`${redirector.host}/x:v1`)).catch((e) => e);
      await c1.close();
      expect(e1).toBeInstanceOf(RegistryAddressRefusedError);
      expect(e1.rule).toBe('loopback');
      expect(redirector.requests.length).toBe(1);

      // An allowed registry whose bearer challenge points the token request at the trap.
      challenger = await startServer((_req, res) => {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${trap.port}/token",service="x"` });
        res.end();
      });
      const c2 = new RegistryClient({ ...fast, allowPrivate: [challenger.host] });
      const e2 = await c2.resolve(parseReference(`${challenger.host}/x:v1`)).catch((e) => e);
      await c2.close();
      expect(e2).toBeInstanceOf(RegistryAddressRefusedError);
      expect(challenger.requests.length).toBeGreaterThanOrEqual(1);
      expect(trap.connections).toBe(0);
    } finally {
      await redirector?.close();
      await challenger?.close();
    }
  });

  it('refuses a layer blob redirected to a refused address: the decode worker applies the same policy', async () => {
    // Layer blobs are downloaded by the puller's decode worker, not by the client on this thread:
    // an allowed registry redirecting them to the trap must be refused there, with the same error.
    const web = new RegistryClient(fast);
    const layers = new Set((await web.resolve(parseReference(`${REGISTRY}/berth-fixtures/web:v1`))).layers.map((l) => l.digest));
    await web.close();
    const redirector = await startProxy(REGISTRY, {
      intercept: (req, res) => {
        if (!layers.has(req.url?.split('/blobs/')[1] ?? '')) return false;
        res.writeHead(307, { location: `http://127.0.0.1:${trap.port}${req.url}` });
        res.end();
        return true;
      },
    });
    const root = mkdtempSync(join(tmpdir(), 'berth-address-pull-'));
    const puller = new ImagePuller({ root, clientOptions: { ...fast, allowPrivate: [redirector.host] } });
    const fetchBlob = jest.spyOn(RegistryClient.prototype, 'fetchBlob');
    try {
      const err = await puller.pull(`${redirector.host}/berth-fixtures/web:v1`).catch((e) => e);
      expect(err).toBeInstanceOf(RegistryAddressRefusedError);
      expect(err).toMatchObject({ code: 'REGISTRY_ADDRESS_REFUSED', rule: 'loopback', address: '127.0.0.1' });
      expect(err.message).toMatch(/BERTH_REGISTRY_ALLOW_PRIVATE/);
      expect(redirector.requests.filter((q) => layers.has(q.url.split('/blobs/')[1] ?? '')).length).toBeGreaterThanOrEqual(1);
      expect(trap.connections).toBe(0);
      // The layers went the worker's way (the client fetched the config blob only).
      expect(fetchBlob.mock.calls.filter(([, digest]) => layers.has(digest))).toEqual([]);
      expect(readdirSync(join(root, 'snapshots', '.staging'))).toEqual([]);
    } finally {
      fetchBlob.mockRestore();
      await puller.close();
      await redirector.close();
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('still pulls through an allowed proxy on another loopback port (allow-list by host:port)', async () => {
    const proxy = await startProxy(REGISTRY);
    try {
      const refused = new RegistryClient(fast);
      await expect(refused.resolve(parseReference(`${proxy.host}/berth-fixtures/web:v1`))).rejects.toThrow(RegistryAddressRefusedError);
      await refused.close();
      expect(proxy.requests).toHaveLength(0);
      const allowed = new RegistryClient({ ...fast, allowPrivate: [proxy.host] });
      expect((await allowed.resolve(parseReference(`${proxy.host}/berth-fixtures/web:v1`))).digest).toMatch(/^sha256:/);
      await allowed.close();
    } finally {
      await proxy.close();
    }
  });

  it('checks every address a name resolves to and connects only to the checked ones', async () => {
    // A name answering with an allowed address AND a refused one is refused as a whole (the fake
    // resolver stands in for DNS; both addresses are safe: 127.0.0.1 is the trap, 10.0.0.1 is never dialled).
    const answers: Record<string, string[]> = { 'mixed.test': ['127.0.0.1', '10.0.0.1'], 'ok.test': ['127.0.0.1'] };
    const resolve = (host: string, cb: (err: NodeJS.ErrnoException | null, a: { address: string; family: number }[]) => void) =>
      cb(null, (answers[host] ?? []).map((address) => ({ address, family: net.isIP(address) })));
    const agent = new Agent({ connect: guardedConnector(parseAllowList(['127.0.0.0/8']), { timeout: 2000, resolve }) });
    try {
      const err = await request(`http://mixed.test:${trap.port}/v2/`, { dispatcher: agent }).catch((e) => e);
      expect(err).toBeInstanceOf(RegistryAddressRefusedError);
      expect(err).toMatchObject({ rule: 'private', address: '10.0.0.1', host: 'mixed.test' });
      expect(trap.connections).toBe(0);
      // The same dispatcher does connect where every address is allowed (the trap hangs up at once).
      await request(`http://ok.test:${trap.port}/v2/`, { dispatcher: agent }).catch(() => undefined);
      expect(trap.connections).toBe(1);
    } finally {
      await agent.close();
    }
  });
});
