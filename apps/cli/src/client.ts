/**
 * The CLI's HTTP client for the public REST API. Errors come back as `ApiError` carrying the API's
 * own `{error:{code,message,details}}` so the CLI can print them as the API words them.
 */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export interface ClientOptions {
  apiUrl: string;
  token?: string;
  project?: string;
  fetch?: typeof fetch;
}

export class BerthClient {
  private readonly fetch: typeof fetch;
  constructor(readonly opts: ClientOptions) {
    this.fetch = opts.fetch ?? fetch;
  }

  async request<T = any>(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
    const res = await this.raw(method, path, body, extraHeaders);
    const text = await res.text();
    let json: any;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (!res.ok) {
      const e = json?.error;
      throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? (text.slice(0, 300) || res.statusText), e?.details);
    }
    return json as T;
  }

  async raw(method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<Response> {
    const headers: Record<string, string> = { accept: 'application/json', ...extraHeaders };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (this.opts.project) headers['x-berth-project'] = this.opts.project;
    const url = new URL(path, this.opts.apiUrl.endsWith('/') ? this.opts.apiUrl : `${this.opts.apiUrl}/`);
    try {
      return await this.fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
    } catch (e) {
      const c = (e as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
      const cause = c?.code ?? c?.errors?.[0]?.code ?? c?.message ?? (e as Error).message;
      throw new ApiError(0, 'UNREACHABLE', `cannot reach the Berth API at ${this.opts.apiUrl} (${cause})`);
    }
  }

  /** Follows `{items, nextCursor}` pages up to `max` items. */
  async list<T = any>(path: string, max = 1000): Promise<T[]> {
    const out: T[] = [];
    let cursor: string | undefined;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const page = await this.request<{ items: T[]; nextCursor?: string | null }>(
        'GET',
        `${path}${sep}limit=100${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      );
      out.push(...page.items);
      cursor = page.nextCursor ?? undefined;
    } while (cursor && out.length < max);
    return out.slice(0, max);
  }

  /** Server-Sent Events as an async iterator of parsed `data:` payloads. */
  async *events(path: string): AsyncGenerator<any> {
    const res = await this.raw('GET', path, undefined, { accept: 'text/event-stream' });
    if (!res.ok || !res.body) {
      const text = await res.text();
      let e: any;
      try {
        e = JSON.parse(text).error;
      } catch {}
      throw new ApiError(res.status, e?.code ?? `HTTP_${res.status}`, e?.message ?? text.slice(0, 300));
    }
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      buf += decoder.decode(chunk, { stream: true });
      let i: number;
      while ((i = buf.indexOf('\n\n')) >= 0) {
        const frame = buf.slice(0, i);
        buf = buf.slice(i + 2);
        const data = frame
          .split('\n')
          .filter((l) => l.startsWith('data:'))
          .map((l) => l.slice(5).trimStart())
          .join('\n');
        if (data) {
          try {
            yield JSON.parse(data);
          } catch {
            yield data;
          }
        }
      }
    }
  }
}
