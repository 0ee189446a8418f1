import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DigestMismatchError,
  ImagePuller,
  ManifestInvalidError,
  parseReference,
  PlatformNotFoundError,
  RegistryAuthError,
  RegistryClient,
  RegistryNotFoundError,
  RegistryUnavailableError,
} from '@berth/oci';
import { makeLayer, pushImage, pushIndex, REGISTRY, sha256, uniqueRepo, type PushedImage } from './helpers/image-builder';
import { freePort, startHtpasswdRegistry, startProxy, startServer, type OwnRegistry, type TestServer } from './helpers/servers';

// Test servers listen on random loopback ports: allow loopback (the address policy has its own test).
const fast = { retries: 2, retryBaseDelayMs: 5, timeoutMs: 3000, allowPrivate: ['127.0.0.0/8'] };

describe('RegistryClient against the local registry', () => {
  const repo = uniqueRepo('client');
  let amd: PushedImage;
  let arm: PushedImage;
  let docker: PushedImage;
  let indexDigest: string;
  const client = new RegistryClient(fast);
  const closers: (() => Promise<void>)[] = [];

  beforeAll(async () => {
    const base = await makeLayer([{ name: 'etc/', type: 'directory' }, { name: 'etc/os', content: 'amd' }]);
    const top = await makeLayer([{ name: 'app', content: 'hello' }], 'zstd');
    amd = await pushImage(repo, 'amd', [base, top]);
    arm = await pushImage(repo, 'arm', [await makeLayer([{ name: 'etc/os', content: 'arm' }])], { architecture: 'arm64', variant: 'v8' });
    docker = await pushImage(repo, 'docker', [base], { docker: true });
    indexDigest = await pushIndex(repo, 'multi', [
      { image: arm, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
      { image: amd, platform: { os: 'linux', architecture: 'amd64' } },
    ]);
  });
  afterAll(async () => {
    for (const c of closers.reverse()) await c();
    await client.close();
  });

  it('resolves a tag to manifest, config and layers with diff ids', async () => {
    const r = await client.resolve(parseReference(`${REGISTRY}/${repo}:amd`));
    expect(r.digest).toBe(amd.digest);
    expect(r.configDigest).toBe(amd.configDigest);
    expect(r.layers).toEqual(
      amd.layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType, diffId: l.diffId })),
    );
    expect(r.layers[1]!.mediaType).toMatch(/zstd$/);
    expect(r.platform).toEqual({ os: 'linux', architecture: 'amd64' });
    expect(r.totalSize).toBe(amd.layers.reduce((s, l) => s + l.size, 0) + JSON.stringify(amd.config).length);
    expect(r.indexDigest).toBeUndefined();
    expect(r.config.config?.Cmd).toEqual(['/bin/sh']);
  });

  it('resolves Docker schema2 manifests', async () => {
    const r = await client.resolve(parseReference(`${REGISTRY}/${repo}:docker`));
    expect(r.digest).toBe(docker.digest);
    expect(r.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
  });

  it('resolves by digest, and by tag+digest', async () => {
    const byDigest = await client.resolve(parseReference(`${REGISTRY}/${repo}@${amd.digest}`));
    expect(byDigest.digest).toBe(amd.digest);
    const both = await client.resolve(parseReference(`${REGISTRY}/${repo}:amd@${amd.digest}`));
    expect(both.digest).toBe(amd.digest);
  });

  it('HEADs a tag to its digest', async () => {
    const h = await client.headManifest(parseReference(`${REGISTRY}/${repo}:amd`));
    expect(h).toEqual({ digest: amd.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', size: amd.manifest.length });
  });

  it('selects the platform from an index (linux/amd64 by default)', async () => {
    const ref = parseReference(`${REGISTRY}/${repo}:multi`);
    const def = await client.resolve(ref);
    expect(def.digest).toBe(amd.digest);
    expect(def.indexDigest).toBe(indexDigest);
    const a = await client.resolve(ref, { platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } });
    expect(a.digest).toBe(arm.digest);
    expect(a.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    const armClient = new RegistryClient({ ...fast, platform: { os: 'linux', architecture: 'arm64' } });
    expect((await armClient.resolve(ref)).digest).toBe(arm.digest);
    await armClient.close();
    await expect(client.resolve(ref, { platform: { os: 'linux', architecture: 's390x' } })).rejects.toThrow(PlatformNotFoundError);
    await expect(client.resolve(ref, { platform: { os: 'linux', architecture: 's390x' } })).rejects.toThrow(/linux\/arm64\/v8, linux\/amd64/);
  });

  it('reports unknown tags and repositories as RegistryNotFoundError with the registry error', async () => {
    const err = await client.resolve(parseReference(`${REGISTRY}/${repo}:nope`)).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryNotFoundError);
    expect(err.message).toMatch(/MANIFEST_UNKNOWN/);
    expect(err.registryErrors[0].code).toBe('MANIFEST_UNKNOWN');
    const err2 = await client.resolve(parseReference(`${REGISTRY}/berth-oci-test/does-not-exist-${Date.now()}:x`)).catch((e) => e);
    expect(err2).toBeInstanceOf(RegistryNotFoundError);
    const missing = 'sha256:' + 'f'.repeat(64);
    await expect(client.resolve(parseReference(`${REGISTRY}/${repo}@${missing}`))).rejects.toThrow(RegistryNotFoundError);
  });

  it('streams a blob', async () => {
    const { stream, size } = await client.fetchBlob(parseReference(`${REGISTRY}/${repo}:amd`), amd.layers[0]!.digest);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    expect(sha256(Buffer.concat(chunks))).toBe(amd.layers[0]!.digest);
    expect(size).toBe(amd.layers[0]!.size);
  });

  it('refuses a manifest whose bytes do not match the pinned digest', async () => {
    const proxy = await startProxy(REGISTRY, {
      intercept: (req, res) => {
        if (req.url?.includes(`/manifests/${amd.digest}`)) {
          // Serve another (valid) manifest under the requested digest.
          res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
          res.end(docker.manifest);
          return true;
        }
        return false;
      },
    });
    closers.push(proxy.close);
    const err = await client.resolve(parseReference(`${proxy.host}/${repo}@${amd.digest}`)).catch((e) => e);
    expect(err).toBeInstanceOf(DigestMismatchError);
    expect(err.expected).toBe(amd.digest);
    expect(err.actual).toBe(sha256(docker.manifest));
  });

  it('refuses malformed and unsupported manifests', async () => {
    const bodies: Record<string, [string, string]> = {
      garbage: ['application/vnd.oci.image.manifest.v1+json', '{not json'],
      schema1: ['application/vnd.docker.distribution.manifest.v1+prettyjws', JSON.stringify({ schemaVersion: 1, name: 'x' })],
      nolayers: ['application/vnd.oci.image.manifest.v1+json', JSON.stringify({ schemaVersion: 2, config: { mediaType: 'x', digest: amd.configDigest, size: 1 } })],
      badlayer: [
        'application/vnd.oci.image.manifest.v1+json',
        JSON.stringify({
          schemaVersion: 2,
          config: { mediaType: 'x', digest: amd.configDigest, size: 1 },
          layers: [{ mediaType: 'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip', digest: amd.layers[0]!.digest, size: 3 }],
        }),
      ],
    };
    const proxy = await startProxy(REGISTRY, {
      intercept: (req, res) => {
        const tag = /\/manifests\/(\w+)$/.exec(req.url ?? '')?.[1];
        if (tag && bodies[tag]) {
          res.writeHead(200, { 'content-type': bodies[tag]![0] });
          res.end(bodies[tag]![1]);
          return true;
        }
        return false;
      },
    });
    closers.push(proxy.close);
    await expect(client.resolve(parseReference(`${proxy.host}/${repo}:garbage`))).rejects.toThrow(ManifestInvalidError);
    await expect(client.resolve(parseReference(`${proxy.host}/${repo}:schema1`))).rejects.toThrow(/schema 1/);
    await expect(client.resolve(parseReference(`${proxy.host}/${repo}:nolayers`))).rejects.toThrow(/no layers/);
    await expect(client.resolve(parseReference(`${proxy.host}/${repo}:badlayer`))).rejects.toThrow(/unsupported media type/);
  });

  it('retries 5xx with backoff, then gives up with RegistryUnavailableError', async () => {
    let failures = 2;
    const flaky = await startProxy(REGISTRY, {
      intercept: (req, res) => {
        if (req.url?.includes('/manifests/') && failures > 0) {
          failures--;
          res.writeHead(503);
          res.end('busy');
          return true;
        }
        return false;
      },
    });
    closers.push(flaky.close);
    const slept: number[] = [];
    const c = new RegistryClient({ ...fast, retries: 3, retryBaseDelayMs: 100, sleep: async (ms) => void slept.push(ms) });
    expect((await c.resolve(parseReference(`${flaky.host}/${repo}:amd`))).digest).toBe(amd.digest);
    expect(slept).toEqual([100, 200]);

    const down = await startProxy(REGISTRY, {
      intercept: (_req, res) => {
        res.writeHead(500);
        res.end('{"errors":[{"code":"UNKNOWN","message":"disk on fire"}]}');
        return true;
      },
    });
    closers.push(down.close);
    const err = await c.resolve(parseReference(`${down.host}/${repo}:amd`)).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect(err.message).toMatch(/4 attempts.*500.*disk on fire/);
    expect(down.requests).toHaveLength(4);
    await c.close();
  });

  it('maps connection refused to RegistryUnavailableError after bounded retries', async () => {
    const port = await freePort();
    const err = await client.resolve(parseReference(`127.0.0.1:${port}/x/y:z`)).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryUnavailableError);
    expect(err.message).toMatch(/ECONNREFUSED/);
  });

  it('times out a registry that never answers', async () => {
    const silent = await startServer(() => undefined);
    closers.push(silent.close);
    const c = new RegistryClient({ retries: 0, timeoutMs: 200, allowPrivate: ['127.0.0.0/8'] });
    // Without the timeout this would hang until jest's own timeout fails the test.
    await expect(c.resolve(parseReference(`${silent.host}/x/y:z`))).rejects.toThrow(RegistryUnavailableError);
    await c.close();
  });
});

describe('RegistryClient authentication', () => {
  let own: OwnRegistry;
  const user = 'berth';
  const password = 'pa55-' + randomBytes(4).toString('hex');
  const repo = uniqueRepo('auth');
  let pushed: PushedImage;

  beforeAll(async () => {
    own = await startHtpasswdRegistry(user, password);
    const authorization = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
    pushed = await pushImage(repo, 'v1', [await makeLayer([{ name: 'x', content: 'secret' }])], { registry: own.host, authorization });
  }, 20_000);
  afterAll(async () => {
    await own?.close();
  });

  it('uses Basic credentials from the provider on a Basic challenge', async () => {
    const asked: string[] = [];
    const c = new RegistryClient({
      ...fast,
      credentials: (registry) => {
        asked.push(registry);
        return { username: user, password };
      },
    });
    const r = await c.resolve(parseReference(`${own.host}/${repo}:v1`));
    expect(r.digest).toBe(pushed.digest);
    expect(asked).toEqual([own.host]); // asked once, reused for manifest, config and later requests
    await c.close();
  });

  it('fails with RegistryAuthError without or with wrong credentials', async () => {
    const anon = new RegistryClient(fast);
    await expect(anon.resolve(parseReference(`${own.host}/${repo}:v1`))).rejects.toThrow(RegistryAuthError);
    const wrong = new RegistryClient({ ...fast, credentials: () => ({ username: user, password: 'nope' }) });
    const err = await wrong.resolve(parseReference(`${own.host}/${repo}:v1`)).catch((e) => e);
    expect(err).toBeInstanceOf(RegistryAuthError);
    expect(err.status).toBe(401);
    await anon.close();
    await wrong.close();
  });

  describe('bearer token flow (token server + guarding proxy written here)', () => {
    let tokenServer: TestServer;
    let guard: TestServer;
    let blobHost: TestServer;
    const tokens = new Map<string, string>(); // token -> scope
    const repo2 = uniqueRepo('bearer');
    let img: PushedImage;

    beforeAll(async () => {
      img = await pushImage(repo2, 'v1', [await makeLayer([{ name: 'y', content: 'bearer' }])]);
      tokenServer = await startServer((req, res) => {
        const url = new URL(req.url!, 'http://x');
        const basic = 'Basic ' + Buffer.from(`${user}:${password}`).toString('base64');
        if (req.headers.authorization !== basic || url.searchParams.get('service') !== 'berth-test') {
          res.writeHead(401);
          res.end();
          return;
        }
        const token = randomBytes(8).toString('hex');
        tokens.set(token, url.searchParams.get('scope') ?? '');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ token, expires_in: 300 }));
      });
      // Blobs are redirected to a different origin, like registries do with S3/CDN URLs.
      blobHost = await startProxy(REGISTRY);
      guard = await startProxy(REGISTRY, {
        intercept: (req: http.IncomingMessage, res: http.ServerResponse) => {
          const m = /^\/v2\/(.+)\/(manifests|blobs)\//.exec(req.url ?? '');
          const scope = m ? `repository:${m[1]}:pull` : '';
          const auth = req.headers.authorization ?? '';
          const tok = auth.startsWith('Bearer ') ? auth.slice(7) : '';
          if (!tokens.has(tok) || (scope && tokens.get(tok) !== scope)) {
            res.writeHead(401, {
              'www-authenticate': `Bearer realm="http://${tokenServer.host}/token",service="berth-test",scope="${scope}"`,
            });
            res.end('{"errors":[{"code":"UNAUTHORIZED"}]}');
            return true;
          }
          if (m?.[2] === 'blobs') {
            res.writeHead(307, { location: `http://${blobHost.host}${req.url}` });
            res.end();
            return true;
          }
          return false;
        },
      });
    });
    afterAll(async () => {
      await guard?.close();
      await blobHost?.close();
      await tokenServer?.close();
    });

    it('answers the challenge with a token, caches it, and never forwards Authorization across a redirect', async () => {
      const c = new RegistryClient({ ...fast, credentials: () => ({ username: user, password }) });
      const ref = parseReference(`${guard.host}/${repo2}:v1`);
      const r = await c.resolve(ref);
      expect(r.digest).toBe(img.digest);
      const { stream } = await c.fetchBlob(ref, img.layers[0]!.digest);
      const chunks: Buffer[] = [];
      for await (const ch of stream) chunks.push(ch as Buffer);
      expect(sha256(Buffer.concat(chunks))).toBe(img.layers[0]!.digest);
      await c.resolve(ref);
      // One token for the scope, reused for every later request.
      expect(tokenServer.requests).toHaveLength(1);
      expect(tokenServer.requests[0]!.url).toContain(`scope=${encodeURIComponent(`repository:${repo2}:pull`)}`);
      // The guarded registry saw the bearer token; the redirect target saw the blob requests and no credentials.
      expect(guard.requests.filter((q) => q.headers.authorization?.startsWith('Bearer ')).length).toBeGreaterThan(3);
      expect(blobHost.requests.length).toBeGreaterThanOrEqual(3);
      for (const q of blobHost.requests) expect(q.headers.authorization).toBeUndefined();
      await c.close();
    });

    it("pulls layers on the puller's decode worker with the same rules: the token to the registry, no Authorization after the redirect", async () => {
      const root = mkdtempSync(join(tmpdir(), 'berth-bearer-pull-'));
      const puller = new ImagePuller({ root, clientOptions: fast });
      const layer = img.layers[0]!.digest;
      const fetchBlob = jest.spyOn(RegistryClient.prototype, 'fetchBlob');
      const [guardBefore, hostBefore] = [guard.requests.length, blobHost.requests.length];
      try {
        const progress: number[] = [];
        const r = await puller.pull(`${guard.host}/${repo2}:v1`, {
          credentials: () => ({ username: user, password }),
          onProgress: (p) => void (p.status === 'done' || progress.push(p.done)),
        });
        expect(r.fetchedLayers).toEqual([layer]);
        expect(readFileSync(join(r.layers[0]!, 'y'), 'utf8')).toBe('bearer');
        // Not through the client on this thread: the worker asked the guarded registry with the
        // pull's bearer token and followed its redirect without it.
        expect(fetchBlob.mock.calls.filter(([, d]) => d === layer)).toEqual([]);
        const asked = guard.requests.slice(guardBefore).filter((q) => q.url.endsWith(`/blobs/${layer}`));
        expect(asked.some((q) => q.headers.authorization?.startsWith('Bearer '))).toBe(true);
        const served = blobHost.requests.slice(hostBefore).filter((q) => q.url.endsWith(`/blobs/${layer}`));
        expect(served).toHaveLength(1);
        expect(served[0]!.headers.authorization).toBeUndefined();
        expect(progress.at(-1)).toBe(img.layers[0]!.size);
      } finally {
        fetchBlob.mockRestore();
        await puller.close();
        rmSync(root, { recursive: true, force: true });
      }
    });

    it('raises RegistryAuthError when the token server refuses', async () => {
      const c = new RegistryClient({ ...fast, credentials: () => ({ username: user, password: 'bad' }) });
      const err = await c.resolve(parseReference(`${guard.host}/${repo2}:v1`)).catch((e) => e);
      expect(err).toBeInstanceOf(RegistryAuthError);
      expect(err.message).toMatch(/refused user 'berth'/);
      await c.close();
    });
  });
});
