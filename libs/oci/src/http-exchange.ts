import { Agent, request, type Dispatcher } from 'undici';
import type { AddressPolicy } from './address-policy';
import { RegistryUnavailableError } from './errors';
import { guardedConnector } from './guarded-connector';

/**
 * One HTTP exchange of a registry request: the request, and the redirects it answers with,
 * followed to the final response. Authorization goes only to `origin` (the registry's own):
 * never to a redirect target on another origin (blob storage on S3/CDN). Shared by the
 * RegistryClient (manifests, configs, token-less requests) and the decode worker (layer blobs,
 * whose bodies then never cross the calling thread): the same rules on both threads.
 */

const MAX_REDIRECTS = 5;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export interface ExchangeRequest {
  method: 'GET' | 'HEAD';
  /** Headers sent on every hop (user-agent, accept). */
  headers: Record<string, string>;
  /** Sent only while the URL's origin is `origin`. */
  authorization?: string;
  origin: string;
}

/** What RegistryClient reads of a response body: undici's body, or a stand-in for one read elsewhere. */
export interface ExchangeBody extends AsyncIterable<unknown> {
  dump(): Promise<unknown>;
  destroy(): unknown;
}

export interface ExchangeResponse {
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: ExchangeBody;
}

/** Performs one exchange (redirects followed). RegistryClient's default runs it on its own dispatcher. */
export type Exchange = (url: string, req: ExchangeRequest) => Promise<ExchangeResponse>;

export function headerValue(headers: ExchangeResponse['headers'], name: string): string | undefined {
  const v = headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** The exchange on `dispatcher`, in this thread. */
export async function followRedirects(dispatcher: Dispatcher, url: string, req: ExchangeRequest): Promise<Dispatcher.ResponseData> {
  const first = url;
  for (let redirects = 0; ; ) {
    const headers: Record<string, string> = { ...req.headers };
    if (req.authorization && new URL(url).origin === req.origin) headers.authorization = req.authorization;
    const res = await request(url, { method: req.method, headers, dispatcher });
    const location = headerValue(res.headers, 'location');
    if (!REDIRECT_STATUSES.has(res.statusCode) || !location) return res;
    await res.body.dump().catch(() => undefined);
    if (++redirects > MAX_REDIRECTS) throw new RegistryUnavailableError(`too many redirects for ${first}`);
    url = new URL(location, url).toString();
  }
}

/**
 * What another thread needs to connect the way a RegistryClient does: its address policy
 * (already parsed, plain data) and its timeouts. Structured-cloneable.
 */
export interface TransportSettings {
  policy: AddressPolicy;
  timeoutMs: number;
  bodyTimeoutMs: number;
}

/** The dispatcher a RegistryClient builds for itself: every connection checked by the address policy. */
export function guardedAgent(t: TransportSettings): Agent {
  return new Agent({
    connect: guardedConnector(t.policy, { timeout: t.timeoutMs }),
    headersTimeout: t.timeoutMs,
    bodyTimeout: t.bodyTimeoutMs,
  });
}
