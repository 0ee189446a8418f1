import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { DEFAULT_REGISTRY_ALLOW, parseAllowList } from './address-policy';
import {
  DigestMismatchError,
  ManifestInvalidError,
  PlatformNotFoundError,
  RegistryAddressRefusedError,
  RegistryAuthError,
  RegistryNotFoundError,
  RegistryUnavailableError,
  type RegistryErrorDetail,
} from './errors';
import { isIndexMediaType, isManifestMediaType, layerCompression, MANIFEST_ACCEPT, MediaType } from './media-types';
import {
  followRedirects,
  guardedAgent,
  headerValue as header,
  type Exchange,
  type ExchangeBody,
  type ExchangeResponse,
  type TransportSettings,
} from './http-exchange';
import { formatReference, manifestReference, registryEndpointHost, type ImageReference } from './reference';

/**
 * A client for the OCI distribution API (pull side only).
 *
 * `resolve` turns a reference into everything needed to run the image: it GETs the manifest
 * (following an index to the wanted platform), checks every document against its digest,
 * fetches the config and returns the layer descriptors. `fetchBlob` streams one blob; the
 * caller verifies it (the content store does, while it writes).
 *
 * Transport rules: http only for loopback registries and an explicit insecure list; bearer
 * token challenges answered (and tokens cached until they expire) or Basic credentials sent;
 * Authorization never follows a redirect to another origin (blob storage on S3/CDN); 5xx, 429
 * and connection failures retried with bounded exponential backoff, then RegistryUnavailableError.
 * Every connection (registry, token server, redirect target) goes through the address policy
 * (address-policy.ts): loopback, private, link-local and metadata addresses are refused with
 * RegistryAddressRefusedError unless `allowPrivate` covers them.
 */

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
  urls?: string[];
}

export interface ImageManifest {
  schemaVersion: 2;
  mediaType?: string;
  config: Descriptor;
  layers: Descriptor[];
  annotations?: Record<string, string>;
}

export interface ImageIndex {
  schemaVersion: 2;
  mediaType?: string;
  manifests: Descriptor[];
}

/** The subset of the OCI image config Berth reads (the rest is kept as-is). */
export interface ImageConfig {
  architecture: string;
  os: string;
  variant?: string;
  config?: {
    User?: string;
    Env?: string[];
    Entrypoint?: string[] | null;
    Cmd?: string[] | null;
    WorkingDir?: string;
    ExposedPorts?: Record<string, object>;
    Labels?: Record<string, string> | null;
    StopSignal?: string;
    Volumes?: Record<string, object>;
  };
  rootfs: { type: 'layers'; diff_ids: string[] };
  history?: unknown[];
  [key: string]: unknown;
}

export interface LayerDescriptor {
  digest: string;
  size: number;
  mediaType: string;
  /** sha256 of the uncompressed tar, from the config's rootfs.diff_ids. */
  diffId: string;
}

export interface ResolvedImage {
  reference: ImageReference;
  /** Digest of the platform manifest (what a revision pins). */
  digest: string;
  mediaType: string;
  manifest: ImageManifest;
  config: ImageConfig;
  configDigest: string;
  layers: LayerDescriptor[];
  /** Sum of compressed layer sizes plus config. */
  totalSize: number;
  /** Digest of the index when the reference pointed at one. */
  indexDigest?: string;
  platform: Platform;
  /** The exact bytes of the manifest and config (to store them under their digests). */
  raw: { manifest: Buffer; config: Buffer };
}

export interface ManifestHead {
  digest: string;
  mediaType: string;
  size: number;
}

export interface RegistryCredentials {
  username: string;
  password: string;
}

/** Looks up credentials for a registry host ("127.0.0.1:5000", "docker.io"). */
export type CredentialProvider = (
  registry: string,
) => RegistryCredentials | undefined | Promise<RegistryCredentials | undefined>;

export interface RegistryClientOptions {
  credentials?: CredentialProvider;
  /** Registries reached over plain http besides loopback ones. */
  insecureRegistries?: string[];
  /**
   * Allow-list of non-public addresses registries may be reached at: CIDRs (any address inside)
   * and host[:port] entries (that name may resolve to loopback/private/CGNAT addresses). Default
   * DEFAULT_REGISTRY_ALLOW (the local registry at 127.0.0.1:5000 / localhost:5000). Not applied
   * when `dispatcher` is given: build that one with guardedConnector.
   */
  allowPrivate?: readonly string[];
  /** Connect and response-header timeout in ms (default 15000). */
  timeoutMs?: number;
  /** Idle time allowed between body chunks in ms (default 60000). */
  bodyTimeoutMs?: number;
  /** Extra attempts after the first for retryable failures (default 3). */
  retries?: number;
  /** First backoff delay in ms; doubles each retry (default 250). */
  retryBaseDelayMs?: number;
  /** Default platform for index selection (default linux/amd64). */
  platform?: Platform;
  dispatcher?: Dispatcher;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  userAgent?: string;
}

export interface ResolveOptions {
  platform?: Platform;
}

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const MAX_CONFIG_BYTES = 8 * 1024 * 1024;

type AuthState = { scheme: 'basic' } | { scheme: 'bearer'; realm: string; service?: string };

interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="…",service="…",scope="…"` (quoted values may contain commas). */
export function parseChallenge(header: string): Challenge | undefined {
  const m = /^\s*(\w+)\s*(.*)$/s.exec(header);
  if (!m) return undefined;
  const params: Record<string, string> = {};
  const re = /(\w+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  let p: RegExpExecArray | null;
  while ((p = re.exec(m[2] ?? '')) !== null) {
    params[p[1]!.toLowerCase()] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : (p[3] ?? '');
  }
  return { scheme: m[1]!.toLowerCase(), params };
}

export function isLoopbackRegistry(registry: string): boolean {
  const host = registry.startsWith('[') ? registry.slice(0, registry.indexOf(']') + 1) : registry.replace(/:\d+$/, '');
  return host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '[::1]';
}

export function platformString(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

/** Parses "linux/arm64/v8" into a Platform. */
export function parsePlatform(s: string): Platform {
  const [os, architecture, variant] = s.split('/');
  if (!os || !architecture) throw new Error(`platform '${s}' is invalid: expected os/architecture[/variant]`);
  return variant ? { os, architecture, variant } : { os, architecture };
}

function sha256(buf: Buffer): string {
  return 'sha256:' + createHash('sha256').update(buf).digest('hex');
}

const RETRYABLE_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_CLOSED',
]);

function errCode(err: unknown): string | undefined {
  const e = err as { code?: string; cause?: { code?: string } };
  return e?.code ?? e?.cause?.code;
}

/** A connection-level failure worth retrying (reset, refused, timeout), as opposed to bad content. */
export function isRetryableNetworkError(err: unknown): boolean {
  const code = errCode(err);
  return (code !== undefined && RETRYABLE_CODES.has(code)) || (err as Error)?.message === 'aborted';
}

async function readLimited(body: ExchangeBody, limit: number, what: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of body) {
    n += (chunk as Buffer).length;
    if (n > limit) {
      body.destroy();
      throw new ManifestInvalidError(`${what} is larger than ${limit} bytes`);
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function registryErrors(body: ExchangeBody): Promise<{ text: string; errors: RegistryErrorDetail[] }> {
  let text = '';
  try {
    text = (await readLimited(body, 64 * 1024, 'error body')).toString('utf8');
  } catch {
    return { text: '', errors: [] };
  }
  try {
    const parsed = JSON.parse(text) as { errors?: RegistryErrorDetail[] };
    if (Array.isArray(parsed.errors)) return { text, errors: parsed.errors };
  } catch {
    /* not JSON: keep the text */
  }
  return { text, errors: [] };
}

function describeErrors(errors: RegistryErrorDetail[], text: string): string {
  if (errors.length > 0) return errors.map((e) => [e.code, e.message].filter(Boolean).join(': ')).join('; ');
  return text.trim().slice(0, 200);
}

interface SendOptions {
  method: 'GET' | 'HEAD';
  accept?: string[];
  /** Scope to ask a token server for, e.g. repository:foo:pull. */
  scope: string;
  /** Who performs each exchange (default: this client's dispatcher, on this thread). */
  exchange?: Exchange;
}

export class RegistryClient {
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  /** The address policy and timeouts of the dispatcher, when this client built it (or inherited one it built). */
  private transport?: TransportSettings;
  private readonly auth = new Map<string, AuthState>();
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();
  /** Credentials asked once per registry per client (providers may hit a database). */
  private readonly creds = new Map<string, Promise<RegistryCredentials | undefined>>();
  private readonly opts: Required<
    Pick<RegistryClientOptions, 'timeoutMs' | 'bodyTimeoutMs' | 'retries' | 'retryBaseDelayMs' | 'platform' | 'userAgent'>
  > &
    RegistryClientOptions;

  constructor(options: RegistryClientOptions = {}) {
    this.opts = {
      timeoutMs: 15_000,
      bodyTimeoutMs: 60_000,
      retries: 3,
      retryBaseDelayMs: 250,
      platform: { os: 'linux', architecture: 'amd64' },
      userAgent: 'berth-oci/0.1',
      ...options,
    };
    this.ownsDispatcher = !options.dispatcher;
    if (options.dispatcher) this.dispatcher = options.dispatcher;
    else {
      this.transport = {
        policy: parseAllowList(options.allowPrivate ?? DEFAULT_REGISTRY_ALLOW),
        timeoutMs: this.opts.timeoutMs,
        bodyTimeoutMs: this.opts.bodyTimeoutMs,
      };
      this.dispatcher = guardedAgent(this.transport);
    }
  }

  /**
   * How this client connects (address policy, timeouts), for a thread that fetches with the same
   * rules (the decode worker downloads layer blobs itself). Undefined for a client given its own
   * `dispatcher`: that one's rules are unknown here, so its blobs are fetched by the client.
   */
  transportSettings(): TransportSettings | undefined {
    return this.transport;
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /**
   * A client for one caller's credentials (one pull of one project): same connection pool and
   * options, but its own credential lookup, auth state and token cache, so a token or password
   * obtained for one caller is never presented for another. Closing it leaves the pool open.
   */
  withCredentials(credentials: CredentialProvider): RegistryClient {
    const child = new RegistryClient({ ...this.opts, credentials, dispatcher: this.dispatcher });
    child.transport = this.transport;
    return child;
  }

  /** Base URL of a registry's API, http for loopback/insecure registries. */
  baseUrl(registry: string): string {
    const insecure = isLoopbackRegistry(registry) || (this.opts.insecureRegistries ?? []).includes(registry);
    return `${insecure ? 'http' : 'https'}://${registryEndpointHost(registry)}`;
  }

  /** Cheap tag → digest lookup (HEAD, falling back to GET when the registry omits the digest header). */
  async headManifest(ref: ImageReference): Promise<ManifestHead> {
    const path = `/v2/${ref.repository}/manifests/${manifestReference(ref)}`;
    const res = await this.send(ref.registry, path, { method: 'HEAD', accept: MANIFEST_ACCEPT, scope: pullScope(ref) });
    await res.body.dump().catch(() => undefined);
    if (res.statusCode === 404) {
      throw new RegistryNotFoundError(`manifest ${formatReference(ref)} not found`);
    }
    this.expectOk(res.statusCode, ref, 'manifest');
    const digest = header(res.headers, 'docker-content-digest');
    const mediaType = (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
    const size = Number(header(res.headers, 'content-length') ?? NaN);
    if (digest && /^sha256:[a-f0-9]{64}$/.test(digest) && mediaType) {
      if (ref.digest && digest !== ref.digest) throw new DigestMismatchError(ref.digest, digest, 'manifest');
      return { digest, mediaType, size };
    }
    const got = await this.getManifest(ref, manifestReference(ref));
    return { digest: got.digest, mediaType: got.mediaType, size: got.bytes.length };
  }

  /** Resolves a reference to its platform manifest, config and layers. */
  async resolve(ref: ImageReference, options: ResolveOptions = {}): Promise<ResolvedImage> {
    const wanted = options.platform ?? this.opts.platform;
    const top = await this.getManifest(ref, manifestReference(ref));
    if (ref.digest && top.digest !== ref.digest) throw new DigestMismatchError(ref.digest, top.digest, 'manifest');

    let manifestDoc = top;
    let indexDigest: string | undefined;
    if (isIndexMediaType(top.mediaType)) {
      indexDigest = top.digest;
      const index = top.json as unknown as ImageIndex;
      if (!Array.isArray(index.manifests)) throw new ManifestInvalidError(`index ${top.digest} has no manifests array`);
      const chosen = selectPlatform(index.manifests, wanted);
      if (!chosen) {
        const available = index.manifests.filter((m) => m.platform).map((m) => platformString(m.platform!));
        throw new PlatformNotFoundError(
          `no manifest for platform ${platformString(wanted)} in ${formatReference(ref)} (available: ${available.join(', ') || 'none'})`,
          available,
        );
      }
      manifestDoc = await this.getManifest(ref, chosen.digest);
      if (manifestDoc.digest !== chosen.digest) throw new DigestMismatchError(chosen.digest, manifestDoc.digest, 'manifest');
      if (!isManifestMediaType(manifestDoc.mediaType)) {
        throw new ManifestInvalidError(`index entry ${chosen.digest} is a ${manifestDoc.mediaType}, not an image manifest`);
      }
    } else if (!isManifestMediaType(top.mediaType)) {
      throw new ManifestInvalidError(`unsupported manifest media type '${top.mediaType}' for ${formatReference(ref)}`);
    }

    const manifest = validateManifest(manifestDoc.json, manifestDoc.digest);
    const configBytes = await this.fetchSmallBlob(ref, manifest.config.digest, MAX_CONFIG_BYTES);
    const config = validateConfig(configBytes, manifest.config.digest);
    if (config.rootfs.diff_ids.length !== manifest.layers.length) {
      throw new ManifestInvalidError(
        `config ${manifest.config.digest} lists ${config.rootfs.diff_ids.length} diff_ids for ${manifest.layers.length} layers`,
      );
    }
    const layers = manifest.layers.map((l, i) => ({
      digest: l.digest,
      size: l.size,
      mediaType: l.mediaType,
      diffId: config.rootfs.diff_ids[i]!,
    }));
    const platform: Platform = { os: config.os, architecture: config.architecture };
    if (config.variant) platform.variant = config.variant;
    const resolved: ResolvedImage = {
      reference: ref,
      digest: manifestDoc.digest,
      mediaType: manifestDoc.mediaType,
      manifest,
      config,
      configDigest: manifest.config.digest,
      layers,
      totalSize: manifest.config.size + layers.reduce((s, l) => s + l.size, 0),
      platform,
      raw: { manifest: manifestDoc.bytes, config: configBytes },
    };
    if (indexDigest) resolved.indexDigest = indexDigest;
    return resolved;
  }

  /**
   * Streams a blob. The stream is NOT verified here: consumers hash while they write.
   * Retries happen only before the first byte; a failure mid-body surfaces on the stream.
   */
  async fetchBlob(ref: ImageReference, digest: string): Promise<{ stream: Readable; size?: number }> {
    const res = (await this.openBlob(ref, digest)) as Dispatcher.ResponseData;
    const len = header(res.headers, 'content-length');
    const out: { stream: Readable; size?: number } = { stream: res.body };
    if (len !== undefined) out.size = Number(len);
    return out;
  }

  /**
   * The GET of a blob with this client's auth, redirect and retry rules, each exchange performed
   * by `exchange` (default: this client's dispatcher). Resolves with the 2xx response; throws the
   * client's typed errors otherwise. With the decode worker's exchange (transportSettings()), the
   * worker connects under the same address policy and keeps the body: it never reaches this thread.
   */
  async openBlob(ref: ImageReference, digest: string, exchange?: Exchange): Promise<ExchangeResponse> {
    const so: SendOptions = { method: 'GET', scope: pullScope(ref) };
    if (exchange) so.exchange = exchange;
    const res = await this.send(ref.registry, `/v2/${ref.repository}/blobs/${digest}`, so);
    if (res.statusCode === 404) {
      const { text, errors } = await registryErrors(res.body);
      throw new RegistryNotFoundError(`blob ${digest} not found in ${ref.registry}/${ref.repository}: ${describeErrors(errors, text)}`, errors);
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      this.expectOk(res.statusCode, ref, `blob ${digest}`);
    }
    return res;
  }

  private async fetchSmallBlob(ref: ImageReference, digest: string, limit: number): Promise<Buffer> {
    const { stream } = await this.fetchBlob(ref, digest);
    const bytes = await readLimited(stream as Dispatcher.ResponseData['body'], limit, `blob ${digest}`);
    const actual = sha256(bytes);
    if (actual !== digest) throw new DigestMismatchError(digest, actual, 'config');
    return bytes;
  }

  private async getManifest(
    ref: ImageReference,
    reference: string,
  ): Promise<{ digest: string; mediaType: string; json: Record<string, unknown>; bytes: Buffer }> {
    const res = await this.send(ref.registry, `/v2/${ref.repository}/manifests/${reference}`, {
      method: 'GET',
      accept: MANIFEST_ACCEPT,
      scope: pullScope(ref),
    });
    if (res.statusCode === 404) {
      const { text, errors } = await registryErrors(res.body);
      throw new RegistryNotFoundError(
        `manifest ${ref.registry}/${ref.repository}:${reference} not found: ${describeErrors(errors, text)}`,
        errors,
      );
    }
    if (res.statusCode !== 200) {
      const { text, errors } = await registryErrors(res.body);
      this.expectOk(res.statusCode, ref, `manifest (${describeErrors(errors, text)})`);
    }
    const bytes = await readLimited(res.body, MAX_MANIFEST_BYTES, `manifest ${reference}`);
    const digest = sha256(bytes);
    let json: Record<string, unknown>;
    try {
      json = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch (err) {
      throw new ManifestInvalidError(`manifest ${reference} of ${ref.registry}/${ref.repository} is not JSON: ${(err as Error).message}`);
    }
    if (typeof json !== 'object' || json === null || Array.isArray(json)) {
      throw new ManifestInvalidError(`manifest ${reference} is not a JSON object`);
    }
    const headerType = (header(res.headers, 'content-type') ?? '').split(';')[0]!.trim();
    let mediaType = typeof json.mediaType === 'string' ? json.mediaType : headerType;
    if (!mediaType || mediaType === 'application/json') {
      // OCI allows omitting mediaType; tell index from manifest by shape.
      mediaType = Array.isArray(json.manifests) ? MediaType.OciIndex : MediaType.OciManifest;
    }
    if (mediaType === MediaType.DockerSchema1 || mediaType === MediaType.DockerSchema1Signed || json.schemaVersion === 1) {
      throw new ManifestInvalidError(`manifest ${reference} uses Docker schema 1, which is not supported`);
    }
    return { digest, mediaType, json, bytes };
  }

  private expectOk(status: number, ref: ImageReference, what: string): void {
    if (status >= 200 && status < 300) return;
    if (status === 401 || status === 403) {
      throw new RegistryAuthError(`registry ${ref.registry} denied access to ${ref.repository} (${status}) for ${what}`, status);
    }
    if (status >= 500 || status === 429) {
      throw new RegistryUnavailableError(`registry ${ref.registry} answered ${status} for ${what}`);
    }
    throw new ManifestInvalidError(`registry ${ref.registry} answered ${status} for ${what} of ${ref.repository}`);
  }

  /**
   * One logical request: auth (once per call, on challenge), redirects (auth stripped across
   * origins), and retries with exponential backoff for connection failures, 5xx and 429.
   */
  private async send(registry: string, path: string, so: SendOptions): Promise<ExchangeResponse> {
    const base = this.baseUrl(registry);
    const origin = new URL(base).origin;
    let authAttempted = false;
    let lastFailure = '';
    const sleep = this.opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));

    for (let attempt = 0; attempt <= this.opts.retries; attempt++) {
      if (attempt > 0) await sleep(this.opts.retryBaseDelayMs * 2 ** (attempt - 1));
      const authorization = await this.authorizationFor(registry, so.scope);
      const headers: Record<string, string> = { 'user-agent': this.opts.userAgent };
      if (so.accept) headers.accept = so.accept.join(', ');
      const req = { method: so.method, headers, origin, ...(authorization ? { authorization } : {}) };
      let res: ExchangeResponse;
      try {
        res = await (so.exchange ? so.exchange(base + path, req) : followRedirects(this.dispatcher, base + path, req));
      } catch (err) {
        if (err instanceof RegistryUnavailableError || err instanceof RegistryAddressRefusedError) throw err;
        const code = errCode(err);
        if (code && RETRYABLE_CODES.has(code)) {
          lastFailure = `${code}: ${(err as Error).message}`;
          continue;
        }
        throw new RegistryUnavailableError(`request to ${registry} failed: ${(err as Error).message}`, { cause: err });
      }

      if (res.statusCode === 401) {
        const challenge = header(res.headers, 'www-authenticate');
        await res.body.dump().catch(() => undefined);
        if (authAttempted || !challenge) {
          throw new RegistryAuthError(
            `registry ${registry} rejected ${authorization ? 'the credentials' : 'anonymous access'} for ${so.scope}`,
            401,
          );
        }
        authAttempted = true;
        await this.learnChallenge(registry, challenge, so.scope);
        attempt--; // answering a challenge is not a retry
        continue;
      }
      if (res.statusCode >= 500 || res.statusCode === 429) {
        const { text, errors } = await registryErrors(res.body);
        lastFailure = `HTTP ${res.statusCode} ${describeErrors(errors, text)}`.trim();
        continue;
      }
      return res;
    }
    throw new RegistryUnavailableError(
      `registry ${registry} unavailable after ${this.opts.retries + 1} attempts: ${lastFailure}`,
    );
  }

  private async learnChallenge(registry: string, headerValue: string, scope: string): Promise<void> {
    const ch = parseChallenge(headerValue);
    if (ch?.scheme === 'bearer' && ch.params.realm) {
      const state: AuthState = { scheme: 'bearer', realm: ch.params.realm };
      if (ch.params.service) state.service = ch.params.service;
      this.auth.set(registry, state);
      // Drop a cached token for this scope: it was just refused.
      this.tokens.delete(`${registry}|${ch.params.scope ?? scope}`);
      this.tokens.delete(`${registry}|${scope}`);
      return;
    }
    if (ch?.scheme === 'basic') {
      const creds = await this.credentialsFor(registry);
      if (!creds) throw new RegistryAuthError(`registry ${registry} requires credentials (Basic) and none are configured`, 401);
      this.auth.set(registry, { scheme: 'basic' });
      return;
    }
    throw new RegistryAuthError(`registry ${registry} sent an unsupported auth challenge: ${headerValue}`, 401);
  }

  private credentialsFor(registry: string): Promise<RegistryCredentials | undefined> {
    let p = this.creds.get(registry);
    if (!p) {
      p = Promise.resolve(this.opts.credentials?.(registry));
      this.creds.set(registry, p);
      p.catch(() => this.creds.delete(registry)); // a failed lookup is retried next time
    }
    return p;
  }

  private async authorizationFor(registry: string, scope: string): Promise<string | undefined> {
    const state = this.auth.get(registry);
    if (!state) return undefined;
    const creds = await this.credentialsFor(registry);
    if (state.scheme === 'basic') {
      return creds ? 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64') : undefined;
    }
    const key = `${registry}|${scope}`;
    const now = (this.opts.now ?? Date.now)();
    const cached = this.tokens.get(key);
    if (cached && cached.expiresAt > now) return `Bearer ${cached.token}`;

    const url = new URL(state.realm);
    if (state.service) url.searchParams.set('service', state.service);
    url.searchParams.set('scope', scope);
    const headers: Record<string, string> = { 'user-agent': this.opts.userAgent };
    if (creds) headers.authorization = 'Basic ' + Buffer.from(`${creds.username}:${creds.password}`).toString('base64');
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, { method: 'GET', headers, dispatcher: this.dispatcher });
    } catch (err) {
      if (err instanceof RegistryAddressRefusedError) throw err;
      throw new RegistryUnavailableError(`token server ${url.origin} unreachable: ${(err as Error).message}`, { cause: err });
    }
    if (res.statusCode === 401 || res.statusCode === 403) {
      await res.body.dump().catch(() => undefined);
      throw new RegistryAuthError(
        `token server for ${registry} refused ${creds ? `user '${creds.username}'` : 'anonymous access'} for ${scope} (${res.statusCode})`,
        res.statusCode,
      );
    }
    if (res.statusCode !== 200) {
      const { text } = await registryErrors(res.body);
      throw new RegistryUnavailableError(`token server for ${registry} answered ${res.statusCode}: ${text.slice(0, 200)}`);
    }
    let body: { token?: string; access_token?: string; expires_in?: number };
    try {
      body = JSON.parse((await readLimited(res.body, 1024 * 1024, 'token response')).toString('utf8'));
    } catch {
      throw new RegistryAuthError(`token server for ${registry} returned an unreadable token response`);
    }
    const token = body.token ?? body.access_token;
    if (!token) throw new RegistryAuthError(`token server for ${registry} returned no token`);
    // Spec default lifetime is 60 s; renew 10 s early so a token never expires mid-request.
    const ttl = Math.max(10, (body.expires_in ?? 60) - 10) * 1000;
    this.tokens.set(key, { token, expiresAt: now + ttl });
    return `Bearer ${token}`;
  }
}

function pullScope(ref: ImageReference): string {
  return `repository:${ref.repository}:pull`;
}


/** Picks the index entry for a platform: exact variant when asked, else the first os/arch match. */
export function selectPlatform(manifests: Descriptor[], wanted: Platform): Descriptor | undefined {
  const candidates = manifests.filter(
    (m) => m.platform && m.platform.os === wanted.os && m.platform.architecture === wanted.architecture,
  );
  if (wanted.variant) {
    const exact = candidates.find((m) => m.platform!.variant === wanted.variant);
    if (exact) return exact;
    // arm64 images usually omit the implied "v8" variant.
    if (wanted.architecture === 'arm64' && wanted.variant === 'v8') return candidates.find((m) => !m.platform!.variant);
    return undefined;
  }
  return candidates[0];
}

const DIGEST_RE = /^sha256:[a-f0-9]{64}$/;

function validateDescriptor(d: unknown, where: string): Descriptor {
  const o = d as Partial<Descriptor>;
  if (!o || typeof o !== 'object') throw new ManifestInvalidError(`${where} is not a descriptor object`);
  if (typeof o.digest !== 'string' || !DIGEST_RE.test(o.digest)) {
    throw new ManifestInvalidError(`${where} has an invalid digest '${String(o.digest)}' (only sha256 is supported)`);
  }
  if (typeof o.size !== 'number' || !Number.isSafeInteger(o.size) || o.size < 0) {
    throw new ManifestInvalidError(`${where} has an invalid size '${String(o.size)}'`);
  }
  if (typeof o.mediaType !== 'string') throw new ManifestInvalidError(`${where} has no mediaType`);
  return o as Descriptor;
}

/** Checks the shape of an image manifest; refuses layer types Berth cannot unpack. */
export function validateManifest(json: Record<string, unknown>, digest: string): ImageManifest {
  if (json.schemaVersion !== 2) throw new ManifestInvalidError(`manifest ${digest} has schemaVersion ${String(json.schemaVersion)}, expected 2`);
  validateDescriptor(json.config, `manifest ${digest} config`);
  if (!Array.isArray(json.layers)) throw new ManifestInvalidError(`manifest ${digest} has no layers array`);
  json.layers.forEach((l, i) => {
    const d = validateDescriptor(l, `manifest ${digest} layer ${i}`);
    if (layerCompression(d.mediaType) === undefined) {
      throw new ManifestInvalidError(`manifest ${digest} layer ${i} has unsupported media type '${d.mediaType}'`);
    }
  });
  return json as unknown as ImageManifest;
}

export function validateConfig(bytes: Buffer, digest: string): ImageConfig {
  let cfg: ImageConfig;
  try {
    cfg = JSON.parse(bytes.toString('utf8')) as ImageConfig;
  } catch (err) {
    throw new ManifestInvalidError(`config ${digest} is not JSON: ${(err as Error).message}`);
  }
  if (!cfg || typeof cfg !== 'object') throw new ManifestInvalidError(`config ${digest} is not an object`);
  if (typeof cfg.os !== 'string' || typeof cfg.architecture !== 'string') {
    throw new ManifestInvalidError(`config ${digest} lacks os/architecture`);
  }
  const diffIds = cfg.rootfs?.diff_ids;
  if (!Array.isArray(diffIds) || diffIds.some((d) => typeof d !== 'string' || !DIGEST_RE.test(d))) {
    throw new ManifestInvalidError(`config ${digest} has no valid rootfs.diff_ids`);
  }
  return cfg;
}
