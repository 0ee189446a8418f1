import type { Logger } from '@berth/observability';
import { RedisKey, RouteEntry } from '@berth/contracts';
import type Redis from 'ioredis';

export interface RouteTableKeys {
  routes: string;
  channel: string;
}

export const routeTableKeys = (prefix = ''): RouteTableKeys => ({
  routes: `${prefix}${RedisKey.routes}`,
  channel: `${prefix}${RedisKey.routesChannel}`,
});

/**
 * The gateway's in-memory copy of the routing table the scheduler publishes in Redis.
 * Lifecycle: `start()` subscribes to the change channel, then loads the whole hash (so no change
 * between the two is missed), then reloads everything every `refreshMs` as a safety net for lost
 * notices. A notice carries the hash field; the entry is re-read with HGET (absent = removed).
 * Requests that wait for a service to get a READY endpoint park on `waitForEndpoints`.
 */
export class RouteTable {
  private entries = new Map<string, RouteEntry>();
  /** Parked requests per key; `anyEntry` waiters (unknown hosts) wake on any entry, the others on READY endpoints. */
  private readonly waiters = new Map<string, Set<Waiter>>();
  private timer: NodeJS.Timeout | null = null;
  private loadedOnce = false;
  private readonly onChange: ((key: string, entry: RouteEntry | undefined) => void)[] = [];

  constructor(
    private readonly deps: {
      redis: Redis;
      /** A second connection: a subscribed ioredis client cannot run other commands. */
      subscriber: Redis;
      keys: RouteTableKeys;
      refreshMs: number;
      log: Logger;
    },
  ) {}

  get loaded(): boolean {
    return this.loadedOnce;
  }

  async start(): Promise<void> {
    const { subscriber, keys } = this.deps;
    subscriber.on('message', (channel: string, field: string) => {
      if (channel === keys.channel) void this.reloadOne(field);
    });
    await subscriber.subscribe(keys.channel);
    await this.reloadAll();
    if (this.deps.refreshMs > 0) {
      this.timer = setInterval(() => void this.reloadAll().catch((e) => this.deps.log.warn({ err: e }, 'routing table refresh failed')), this.deps.refreshMs);
      this.timer.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.deps.subscriber.unsubscribe(this.deps.keys.channel).catch(() => undefined);
  }

  get(key: string): RouteEntry | undefined {
    return this.entries.get(key);
  }

  all(): IterableIterator<RouteEntry> {
    return this.entries.values();
  }

  /** Called after every applied change (used to close upstream pools that left the table). */
  subscribe(fn: (key: string, entry: RouteEntry | undefined) => void): void {
    this.onChange.push(fn);
  }

  /**
   * Resolves with the entry once it has at least one READY endpoint, or null after `timeoutMs` or when
   * `signal` aborts (the client went away).
   */
  waitForEndpoints(key: string, timeoutMs: number, signal?: AbortSignal): Promise<RouteEntry | null> {
    const now = this.entries.get(key);
    if (now && now.endpoints.length > 0) return Promise.resolve(now);
    return this.park(key, false, timeoutMs, signal);
  }

  /** Resolves with the entry as soon as the key has one (with or without endpoints), or null as above. */
  waitForEntry(key: string, timeoutMs: number, signal?: AbortSignal): Promise<RouteEntry | null> {
    const now = this.entries.get(key);
    if (now) return Promise.resolve(now);
    return this.park(key, true, timeoutMs, signal);
  }

  private park(key: string, anyEntry: boolean, timeoutMs: number, signal?: AbortSignal): Promise<RouteEntry | null> {
    if (signal?.aborted) return Promise.resolve(null);
    return new Promise((resolve) => {
      let set = this.waiters.get(key);
      if (!set) this.waiters.set(key, (set = new Set()));
      const done = (e: RouteEntry | null) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        set!.delete(waiter);
        if (set!.size === 0 && this.waiters.get(key) === set) this.waiters.delete(key);
        resolve(e);
      };
      const waiter: Waiter = { anyEntry, fn: (e: RouteEntry) => done(e) };
      const onAbort = () => done(null);
      const timer = setTimeout(() => done(null), timeoutMs);
      set.add(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /**
   * Reads one entry straight from Redis (not waiting for the change notice) and applies it: the
   * gateway's look-up for a Host it does not know yet. Null when Redis has no (valid) entry.
   */
  async lookup(key: string): Promise<RouteEntry | null> {
    const json = await this.deps.redis.hget(this.deps.keys.routes, key);
    // A change notice may have been applied while the read was in flight: the table's copy wins.
    const known = this.entries.get(key);
    if (known) return known;
    const entry = json === null ? null : this.parse(key, json);
    if (!entry) return null;
    this.entries.set(key, entry);
    this.changed(key, entry);
    return entry;
  }

  async reloadAll(): Promise<void> {
    const all = await this.deps.redis.hgetall(this.deps.keys.routes);
    const next = new Map<string, RouteEntry>();
    for (const [field, json] of Object.entries(all)) {
      const entry = this.parse(field, json);
      if (entry) next.set(field, entry);
    }
    const previous = this.entries;
    this.entries = next;
    this.loadedOnce = true;
    for (const [key, entry] of next) if (previous.get(key) !== entry) this.changed(key, entry);
    for (const key of previous.keys()) if (!next.has(key)) this.changed(key, undefined);
  }

  async reloadOne(field: string): Promise<void> {
    try {
      const json = await this.deps.redis.hget(this.deps.keys.routes, field);
      const entry = json === null ? undefined : this.parse(field, json);
      if (entry) this.entries.set(field, entry);
      else if (json === null) this.entries.delete(field);
      else return; // unparseable: keep what we had
      this.changed(field, entry ?? undefined);
    } catch (e) {
      this.deps.log.warn({ err: e, field }, 'routing table entry reload failed');
    }
  }

  private changed(key: string, entry: RouteEntry | undefined) {
    const set = entry ? this.waiters.get(key) : undefined;
    if (set) {
      const ready = entry!.endpoints.length > 0;
      for (const w of [...set]) if (ready || w.anyEntry) w.fn(entry!);
    }
    for (const fn of this.onChange) fn(key, entry);
  }

  private parse(field: string, json: string): RouteEntry | null {
    try {
      const e = JSON.parse(json) as RouteEntry;
      if (!e || typeof e.serviceId !== 'string' || !Array.isArray(e.endpoints)) throw new Error('missing serviceId or endpoints');
      return e;
    } catch (err) {
      this.deps.log.warn({ field, err: (err as Error).message }, 'ignoring malformed routing table entry');
      return null;
    }
  }
}

interface Waiter {
  anyEntry: boolean;
  fn: (e: RouteEntry) => void;
}
