import { ManifestInvalidError } from './errors';
import {
  isLoopbackRegistry,
  parseChallenge,
  parsePlatform,
  RegistryClient,
  selectPlatform,
  validateConfig,
  validateManifest,
  type Descriptor,
} from './registry-client';

const D = (c: string) => 'sha256:' + c.repeat(64);

describe('parseChallenge', () => {
  it('reads bearer parameters, including quoted commas', () => {
    expect(
      parseChallenge('Bearer realm="https://auth.example.com/token",service="registry.example.com",scope="repository:a/b:pull,push"'),
    ).toEqual({
      scheme: 'bearer',
      params: { realm: 'https://auth.example.com/token', service: 'registry.example.com', scope: 'repository:a/b:pull,push' },
    });
  });
  it('reads basic challenges and unquoted values', () => {
    expect(parseChallenge('Basic realm=registry')).toEqual({ scheme: 'basic', params: { realm: 'registry' } });
    expect(parseChallenge('')).toBeUndefined();
  });
});

describe('transport choice', () => {
  it('uses http only for loopback and explicitly insecure registries', async () => {
    const c = new RegistryClient({ insecureRegistries: ['registry.lan:5000'] });
    expect(c.baseUrl('127.0.0.1:5000')).toBe('http://127.0.0.1:5000');
    expect(c.baseUrl('localhost:5000')).toBe('http://localhost:5000');
    expect(c.baseUrl('[::1]:5000')).toBe('http://[::1]:5000');
    expect(c.baseUrl('registry.lan:5000')).toBe('http://registry.lan:5000');
    expect(c.baseUrl('registry.lan:5001')).toBe('https://registry.lan:5001');
    expect(c.baseUrl('ghcr.io')).toBe('https://ghcr.io');
    expect(c.baseUrl('docker.io')).toBe('https://registry-1.docker.io');
    expect(isLoopbackRegistry('127.10.0.1')).toBe(true);
    expect(isLoopbackRegistry('localhost.example.com')).toBe(false);
    await c.close();
  });
});

describe('selectPlatform', () => {
  const m = (p: Descriptor['platform'], c: string): Descriptor => ({ mediaType: 'x', digest: D(c), size: 1, ...(p ? { platform: p } : {}) });
  const list = [
    m({ os: 'linux', architecture: 'arm', variant: 'v7' }, 'a'),
    m({ os: 'linux', architecture: 'arm64' }, 'b'),
    m({ os: 'linux', architecture: 'amd64' }, 'c'),
    m(undefined, 'd'),
  ];
  it('matches os/architecture and variants', () => {
    expect(selectPlatform(list, parsePlatform('linux/amd64'))?.digest).toBe(D('c'));
    expect(selectPlatform(list, parsePlatform('linux/arm/v7'))?.digest).toBe(D('a'));
    expect(selectPlatform(list, parsePlatform('linux/arm/v6'))).toBeUndefined();
    expect(selectPlatform(list, parsePlatform('linux/arm64/v8'))?.digest).toBe(D('b'));
    expect(selectPlatform(list, parsePlatform('windows/amd64'))).toBeUndefined();
  });
  it('rejects malformed platform strings', () => {
    expect(() => parsePlatform('linux')).toThrow(/os\/architecture/);
  });
});

describe('validateManifest / validateConfig', () => {
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: D('1'), size: 10 };
  const ok = { schemaVersion: 2, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: D('2'), size: 5 }, layers: [layer] };
  it('accepts a well-formed manifest', () => {
    expect(validateManifest(ok, D('0')).layers).toHaveLength(1);
  });
  it.each([
    [{ ...ok, schemaVersion: 1 }, /schemaVersion/],
    [{ ...ok, config: { ...ok.config, digest: 'sha256:xyz' } }, /invalid digest/],
    [{ ...ok, layers: [{ ...layer, size: -1 }] }, /invalid size/],
    [{ ...ok, layers: [{ ...layer, mediaType: 'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip' }] }, /unsupported media type/],
    [{ ...ok, layers: 'x' }, /no layers/],
  ])('refuses %#', (m, why) => {
    expect(() => validateManifest(m as Record<string, unknown>, D('0'))).toThrow(ManifestInvalidError);
    expect(() => validateManifest(m as Record<string, unknown>, D('0'))).toThrow(why);
  });
  it('checks the config', () => {
    const cfg = { os: 'linux', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [D('3')] } };
    expect(validateConfig(Buffer.from(JSON.stringify(cfg)), D('2')).rootfs.diff_ids).toEqual([D('3')]);
    expect(() => validateConfig(Buffer.from('{'), D('2'))).toThrow(/not JSON/);
    expect(() => validateConfig(Buffer.from(JSON.stringify({ ...cfg, os: undefined })), D('2'))).toThrow(/os\/architecture/);
    expect(() => validateConfig(Buffer.from(JSON.stringify({ ...cfg, rootfs: { diff_ids: ['x'] } })), D('2'))).toThrow(/diff_ids/);
  });
});
