import { createSseParser } from '../lib/sse';
import type { ApiErrorBody, Page } from './types';

/** An error as the API words it: `{error: {code, message, details}}`, or a network failure. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface Credentials {
  token: string;
  project: string | null;
}

type Unauthorized = (e: ApiError) => void;

/**
 * Same-origin client for /v1. Every request carries `Authorization: Bearer` and, when a project is
 * chosen, `X-Berth-Project`. A 401 is reported once to `onUnauthorized` (the session has ended).
 */
export class ApiClient {
  constructor(
    private readonly creds: () => Credentials | null,
    private readonly onUnauthorized: Unauthorized = () => undefined,
    private readonly fetchImpl: typeof fetch = (...a) => fetch(...a),
  ) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    const c = this.creds();
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (c?.token) h.authorization = `Bearer ${c.token}`;
    if (c?.project) h['x-berth-project'] = c.project;
    return h;
  }

  async request<T>(method: string, path: string, body?: unknown, opts: { auth?: boolean; signal?: AbortSignal } = {}): Promise<T> {
    const headers = opts.auth === false ? { accept: 'application/json' } : this.headers();
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (method !== 'GET') headers['idempotency-key'] = randomKey();
    let res: Response;
    try {
      res = await this.fetchImpl(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: opts.signal });
    } catch (e) {
      if ((e as Error).name === 'AbortError') throw e;
      throw new ApiError(0, 'NETWORK', `cannot reach the API: ${(e as Error).message}`);
    }
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    const json = text ? safeJson(text) : undefined;
    if (!res.ok) {
      const err = toApiError(res.status, json, text);
      if (res.status === 401 && opts.auth !== false) this.onUnauthorized(err);
      throw err;
    }
    return json as T;
  }

  get = <T>(path: string, signal?: AbortSignal) => this.request<T>('GET', path, undefined, { signal });
  post = <T>(path: string, body: unknown = {}) => this.request<T>('POST', path, body);
  put = <T>(path: string, body: unknown) => this.request<T>('PUT', path, body);

  /** Every page of a paginated list (bounded: at most `maxPages`). */
  async all<T>(path: string, maxPages = 20): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | null = null;
    for (let i = 0; i < maxPages; i++) {
      const sep = path.includes('?') ? '&' : '?';
      const page: Page<T> = await this.get<Page<T>>(`${path}${sep}limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      out.push(...page.items);
      if (!page.nextCursor) break;
      cursor = page.nextCursor;
    }
    return out;
  }

  /**
   * Server-Sent Events over fetch, because EventSource cannot send the Authorization header.
   * Resolves when the stream ends; abort `signal` to stop following.
   */
  async stream(path: string, onData: (data: string, event: string) => void, signal: AbortSignal): Promise<void> {
    const res = await this.fetchImpl(path, { headers: this.headers({ accept: 'text/event-stream' }), signal });
    if (!res.ok || !res.body) {
      const text = await res.text();
      const err = toApiError(res.status, safeJson(text), text);
      if (res.status === 401) this.onUnauthorized(err);
      throw err;
    }
    const parser = createSseParser((e) => onData(e.data, e.event));
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      parser.push(value);
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

export function toApiError(status: number, json: unknown, text: string): ApiError {
  const e = (json as ApiErrorBody | undefined)?.error;
  if (e && typeof e.message === 'string') return new ApiError(status, e.code ?? 'UNKNOWN', e.message, e.details);
  return new ApiError(status, 'HTTP_' + status, text.trim().slice(0, 300) || `HTTP ${status}`);
}

function randomKey(): string {
  const b = new Uint8Array(16);
  crypto.getRandomValues(b);
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}
