/**
 * Builds OCI images in memory (tar-stream + zlib/zstd) and pushes them to a registry with the
 * raw distribution upload API, so integration tests control every byte of every layer.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack as tarPack, type Header } from 'tar-stream';

export const REGISTRY = '127.0.0.1:5000';

/**
 * GNU tar and Go's archive/tar write SCHILY.xattr values as raw bytes; tar-stream's packer would
 * UTF-8-encode them. Tests pass binary values as latin1 strings, so encode those byte-for-byte.
 */
const tarHeaders = require(join(dirname(require.resolve('tar-stream')), 'headers.js')) as {
  encodePax: (opts: { name?: string; linkname?: string; pax?: Record<string, string> }) => Buffer;
};
tarHeaders.encodePax = (opts) => {
  const records: Buffer[] = [];
  const add = (key: string, value: Buffer) => {
    const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
    let len = body.length + 1;
    while (String(len).length + body.length !== len) len = String(len).length + body.length;
    records.push(Buffer.concat([Buffer.from(String(len)), body]));
  };
  if (opts.name) add('path', Buffer.from(opts.name));
  if (opts.linkname) add('linkpath', Buffer.from(opts.linkname));
  for (const [k, v] of Object.entries(opts.pax ?? {})) add(k, Buffer.from(v, k.startsWith('SCHILY.xattr.') ? 'latin1' : 'utf8'));
  return Buffer.concat(records);
};

export interface TarEntry {
  name: string;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'block-device' | 'fifo';
  content?: string | Buffer;
  linkname?: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: Date;
  devmajor?: number;
  devminor?: number;
  pax?: Record<string, string>;
}

export interface BuiltLayer {
  blob: Buffer;
  digest: string;
  diffId: string;
  size: number;
  mediaType: string;
}

export function sha256(buf: Buffer): string {
  return 'sha256:' + createHash('sha256').update(buf).digest('hex');
}

export async function makeTar(entries: TarEntry[]): Promise<Buffer> {
  const p = tarPack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', resolve);
    p.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const content = e.content === undefined ? undefined : Buffer.from(e.content);
    const h: Partial<Header> & { name: string } = {
      name: e.name,
      type,
      mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644),
      uid: e.uid ?? 0,
      gid: e.gid ?? 0,
      mtime: e.mtime ?? new Date('2024-01-02T03:04:05Z'),
    };
    if (e.linkname !== undefined) h.linkname = e.linkname;
    if (e.devmajor !== undefined) h.devmajor = e.devmajor;
    if (e.devminor !== undefined) h.devminor = e.devminor;
    if (e.pax) h.pax = e.pax;
    if (type === 'file') h.size = content?.length ?? 0;
    await new Promise<void>((resolve, reject) => {
      if (type === 'file') p.entry(h as Header, content ?? Buffer.alloc(0), (err) => (err ? reject(err) : resolve()));
      else p.entry(h as Header, (err) => (err ? reject(err) : resolve()));
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export async function makeLayer(entries: TarEntry[], compression: 'gzip' | 'zstd' | 'none' = 'gzip'): Promise<BuiltLayer> {
  const tar = await makeTar(entries);
  return layerFromTar(tar, compression);
}

export function layerFromTar(tar: Buffer, compression: 'gzip' | 'zstd' | 'none' = 'gzip'): BuiltLayer {
  let blob = tar;
  let mediaType = 'application/vnd.oci.image.layer.v1.tar';
  if (compression === 'gzip') {
    blob = gzipSync(tar, { level: 1 });
    mediaType += '+gzip';
  } else if (compression === 'zstd') {
    const r = spawnSync('zstd', ['-q', '-c', '-1'], { input: tar, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr}`);
    blob = r.stdout;
    mediaType += '+zstd';
  }
  return { blob, digest: sha256(blob), diffId: sha256(tar), size: blob.length, mediaType };
}

export function uniqueRepo(prefix: string): string {
  return `berth-oci-test/${prefix}-${randomBytes(4).toString('hex')}`;
}

export interface PushTarget {
  registry?: string;
  /** Value for the Authorization header (e.g. Basic …) when the registry needs one. */
  authorization?: string;
}

function headers(t: PushTarget, extra: Record<string, string> = {}): Record<string, string> {
  return t.authorization ? { authorization: t.authorization, ...extra } : extra;
}

export async function pushBlob(repo: string, blob: Buffer, t: PushTarget = {}): Promise<string> {
  const reg = t.registry ?? REGISTRY;
  const digest = sha256(blob);
  const head = await fetch(`http://${reg}/v2/${repo}/blobs/${digest}`, { method: 'HEAD', headers: headers(t) });
  if (head.status === 200) return digest;
  const start = await fetch(`http://${reg}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: headers(t) });
  if (start.status !== 202) throw new Error(`upload start ${start.status}: ${await start.text()}`);
  const loc = new URL(start.headers.get('location')!, `http://${reg}`);
  loc.searchParams.set('digest', digest);
  const put = await fetch(loc, {
    method: 'PUT',
    headers: headers(t, { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) }),
    body: blob,
  });
  if (put.status !== 201) throw new Error(`upload put ${put.status}: ${await put.text()}`);
  return digest;
}

export async function pushManifest(repo: string, tag: string, body: Buffer, mediaType: string, t: PushTarget = {}): Promise<string> {
  const reg = t.registry ?? REGISTRY;
  const res = await fetch(`http://${reg}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: headers(t, { 'content-type': mediaType }),
    body,
  });
  if (res.status !== 201) throw new Error(`manifest put ${res.status}: ${await res.text()}`);
  return sha256(body);
}

export interface PushedImage {
  digest: string;
  manifest: Buffer;
  configDigest: string;
  config: Record<string, unknown>;
  layers: BuiltLayer[];
}

export async function pushImage(
  repo: string,
  tag: string,
  layers: BuiltLayer[],
  opts: PushTarget & { architecture?: string; os?: string; variant?: string; docker?: boolean; config?: Record<string, unknown> } = {},
): Promise<PushedImage> {
  const config: Record<string, unknown> = {
    architecture: opts.architecture ?? 'amd64',
    os: opts.os ?? 'linux',
    ...(opts.variant ? { variant: opts.variant } : {}),
    config: { Env: ['PATH=/bin'], Cmd: ['/bin/sh'], ...(opts.config ?? {}) },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.diffId) },
  };
  const configBlob = Buffer.from(JSON.stringify(config));
  const configDigest = await pushBlob(repo, configBlob, opts);
  for (const l of layers) await pushBlob(repo, l.blob, opts);
  const docker = opts.docker === true;
  const manifestObj = {
    schemaVersion: 2,
    mediaType: docker ? 'application/vnd.docker.distribution.manifest.v2+json' : 'application/vnd.oci.image.manifest.v1+json',
    config: {
      mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json',
      digest: configDigest,
      size: configBlob.length,
    },
    layers: layers.map((l) => ({
      mediaType: docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : l.mediaType,
      digest: l.digest,
      size: l.size,
    })),
  };
  const manifest = Buffer.from(JSON.stringify(manifestObj));
  const digest = await pushManifest(repo, tag, manifest, manifestObj.mediaType, opts);
  return { digest, manifest, configDigest, config, layers };
}

export async function pushIndex(
  repo: string,
  tag: string,
  entries: { image: PushedImage; platform: { os: string; architecture: string; variant?: string } }[],
  t: PushTarget = {},
): Promise<string> {
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: entries.map((e) => ({
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: e.image.digest,
      size: e.image.manifest.length,
      platform: e.platform,
    })),
  };
  return pushManifest(repo, tag, Buffer.from(JSON.stringify(index)), index.mediaType, t);
}
