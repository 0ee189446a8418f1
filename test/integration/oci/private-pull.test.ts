import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ReplicaSpec } from '@berth/contracts';
import { ImagePuller, RegistryAuthError, RegistryClient } from '@berth/oci';
import pino from 'pino';
import { ImageGc } from '../../../apps/agent/src/image-gc';
import { OciImageProvider } from '../../../apps/agent/src/image-provider';
import { apiPullCredentials } from '../../../apps/agent/src/pull-credentials';
import { makeLayer, pushImage, uniqueRepo, type PushedImage } from './helpers/image-builder';
import { startHtpasswdRegistry, startServer, type OwnRegistry, type TestServer } from './helpers/servers';

/**
 * Private images: per-pull credentials against a real docker-registry with htpasswd auth, and the
 * agent's path (API → credentials → OciImageProvider → ImagePuller) with a stand-in API server.
 */
// Test servers listen on random loopback ports: allow loopback (the address policy has its own test).
const fast = { retries: 1, retryBaseDelayMs: 5, timeoutMs: 5000, allowPrivate: ['127.0.0.0/8'] };
const user = 'acme';
const password = 's3cret-pw';

describe('pulling private images', () => {
  const tmp = join(tmpdir(), `berth-oci-private-${process.pid}-${Date.now()}`);
  const repo = uniqueRepo('private');
  let own: OwnRegistry;
  let image: PushedImage;
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    mkdirSync(tmp, { recursive: true });
    own = await startHtpasswdRegistry(user, password);
    const authorization = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
    const layers = [await makeLayer([{ name: 'etc/', type: 'directory' }, { name: 'etc/secret', content: 'private bits' }]), await makeLayer([{ name: 'app', content: 'v1' }])];
    image = await pushImage(repo, 'v1', layers, { registry: own.host, authorization });
  }, 30_000);
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
    await own?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  const newPuller = (name: string) => {
    const p = new ImagePuller({ root: join(tmp, name), clientOptions: fast });
    closers.push(() => p.close());
    return p;
  };

  it('pulls with per-pull credentials, and never lends them (or their auth state) to a later pull', async () => {
    const puller = newPuller('per-pull');
    const ref = `${own.host}/${repo}@${image.digest}`;

    await expect(puller.pull(ref)).rejects.toThrow(RegistryAuthError);

    const asked: string[] = [];
    const res = await puller.pull(ref, {
      credentials: (registry) => {
        asked.push(registry);
        return { username: user, password };
      },
    });
    expect(res.digest).toBe(image.digest);
    expect(res.fetchedLayers).toHaveLength(2);
    expect(asked).toEqual([own.host]); // asked once per pull, for the image's registry only
    expect(readFileSync(join(res.layers[0]!, 'etc', 'secret'), 'utf8')).toBe('private bits');

    // Same puller, same client, layers now on disk: a pull without credentials, or with wrong
    // ones, is still refused — by the manifest fetch, before any cached layer is handed out.
    const anon = await puller.pull(ref).catch((e) => e);
    expect(anon).toBeInstanceOf(RegistryAuthError);
    const wrong = await puller.pull(ref, { credentials: () => ({ username: user, password: 'guess' }) }).catch((e) => e);
    expect(wrong).toBeInstanceOf(RegistryAuthError);
    expect(wrong.status).toBe(401);

    // And with the right ones again: nothing to download, the snapshots are reused.
    const again = await puller.pull(ref, { credentials: () => ({ username: user, password }) });
    expect(again.fetchedLayers).toEqual([]);
    expect(again.reusedLayers).toHaveLength(2);
  });

  it('a credentials view shares the connection pool but closing it leaves the parent usable', async () => {
    const parent = new RegistryClient(fast);
    const view = parent.withCredentials(() => ({ username: user, password }));
    await view.close();
    // The parent still works (its pool is open) and still has no credentials of its own.
    const err = await parent.headManifest({ registry: own.host, repository: repo, tag: 'v1' }).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryAuthError);
    await parent.close();
  });

  describe('through the agent: API → credentials → OciImageProvider', () => {
    let api: TestServer;
    let answer: { status: number; body: unknown } = { status: 200, body: { username: user, password } };
    const bodies: unknown[] = [];

    beforeAll(async () => {
      api = await startServer((req, res) => {
        let data = '';
        req.on('data', (c: Buffer) => (data += c.toString()));
        req.on('end', () => {
          bodies.push(JSON.parse(data || '{}'));
          res.writeHead(answer.status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
          res.end(JSON.stringify(answer.body));
        });
      });
      closers.push(() => api.close());
    });

    const spec = (replicaId: string, registry = own.host): ReplicaSpec => ({
      replicaId,
      serviceId: 'svc-1',
      projectSlug: 'acme',
      serviceName: 'web',
      revisionId: 'rev-1',
      revisionNumber: 1,
      generation: 1,
      image: { reference: `${registry}/${repo}:v1`, digest: image.digest, registry, repository: repo },
      port: 8080,
      env: {},
      command: null,
      resources: { cpuMillis: 100, memoryMiB: 64, pids: 64 },
      restart: { policy: 'no', maxRetries: 0 },
      healthCheck: null,
    });

    it("asks the API for the replica's registry credentials with the node credential, then pulls", async () => {
      const puller = newPuller('agent');
      const creds = apiPullCredentials({ apiUrl: `http://${api.host}`, credential: 'bnc_test', nodeId: 'node-7' });
      const provider = new OciImageProvider(puller, creds);
      // As main.ts wires it: image GC's admission reads the manifest first, with the same answer.
      const gc = new ImageGc({
        puller,
        keepFile: join(tmp, 'agent-keep.json'),
        highPercent: 85,
        lowPercent: 80,
        storeBytes: 1024 ** 3,
        inUse: () => provider.inUse(),
        log: pino({ level: 'silent' }),
      });
      provider.useGc(gc);
      const prepared = await provider.prepare(spec('r-1'), () => undefined);
      expect(prepared.rootfs.mounts?.[0]?.type).toBe('overlay');
      expect(provider.cached()).toEqual([image.digest]);

      expect(api.requests).toHaveLength(1);
      expect(api.requests[0]!.method).toBe('POST');
      expect(api.requests[0]!.url).toBe('/v1/nodes/node-7/pull-credentials');
      expect(api.requests[0]!.headers.authorization).toBe('Bearer bnc_test');
      expect(bodies[0]).toEqual({ replicaId: 'r-1', registry: own.host });
      await provider.release('r-1');
    });

    it('pulls anonymously on 404 (no credentials) and fails the pull on 403 or a malformed answer', async () => {
      const creds = apiPullCredentials({ apiUrl: `http://${api.host}`, credential: 'bnc_test', nodeId: 'node-7' });
      const provider = new OciImageProvider(newPuller('agent-refused'), creds);

      answer = { status: 404, body: { message: 'no credentials' } };
      // Anonymous access to a private registry: the registry's refusal is what surfaces.
      await expect(provider.prepare(spec('r-2'), () => undefined)).rejects.toThrow(/rejected anonymous access|requires credentials/);

      answer = { status: 403, body: { message: 'replica r-3 is not on node node-7' } };
      const forbidden = await provider.prepare(spec('r-3'), () => undefined).catch((e) => e);
      expect(forbidden).toBeInstanceOf(RegistryAuthError);
      expect(forbidden.message).toMatch(/refused credentials .*403 .*not on node/);

      answer = { status: 200, body: { username: user } };
      await expect(provider.prepare(spec('r-4'), () => undefined)).rejects.toThrow(/lacks username\/password/);
      answer = { status: 200, body: { username: user, password } };
    });

    it('never asks for (or sends) credentials for a registry other than the image registry', async () => {
      const creds = apiPullCredentials({ apiUrl: `http://${api.host}`, credential: 'bnc_test', nodeId: 'node-7' });
      const before = api.requests.length;
      const provider = creds(spec('r-5', 'registry.example.invalid:5000'))!;
      expect(await provider(own.host)).toBeUndefined();
      expect(api.requests.length).toBe(before);
      expect(existsSync(tmp)).toBe(true);
    });
  });
});
