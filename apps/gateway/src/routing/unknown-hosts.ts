import type { RouteEntry } from '@berth/contracts';

/** What the unknown-host hold needs from the routing table (RouteTable; a fake in unit specs). */
export interface RouteSource {
  /** The entry read straight from Redis (applied to the table), or null. */
  lookup(key: string): Promise<RouteEntry | null>;
  /** Resolves with the entry when the table gets one, or null after `timeoutMs` / on abort. */
  waitForEntry(key: string, timeoutMs: number, signal?: AbortSignal): Promise<RouteEntry | null>;
}

export interface UnknownHostOptions {
  /** How long a request for a host with no route entry waits for one (0: answer 404 at once). */
  holdMs: number;
  /** Requests held at once for unknown hosts; beyond it, 404 at once (a flood of made-up hosts). */
  maxHeld: number;
  /** After a hold ended without an entry, the key answers after one Redis read, without holding, for this long. */
  negativeMs: number;
}

export type UnknownHostOutcome = 'found' | 'not_found' | 'negative' | 'rejected' | 'gone';

/**
 * A request whose Host names a service the gateway has no route entry for. The entry may just not
 * have reached this gateway yet (the api answered 201 and the change notice is in flight, or the
 * scheduler has not published the new service): the gateway reads the key from Redis at once and,
 * if it is not there, waits for the change notice up to `holdMs`, then reads Redis once more before
 * answering 404. Bounded: at most `maxHeld` such requests at a time (more → 404 at once), concurrent
 * reads of one key share one round trip, and a key that just ended a hold with nothing is not held
 * again for `negativeMs` (one read, then 404).
 */
export class UnknownHosts {
  private heldNow = 0;
  private readonly negative = new Map<string, number>();
  private readonly reads = new Map<string, Promise<RouteEntry | null>>();

  constructor(
    private readonly routes: RouteSource,
    private readonly opts: UnknownHostOptions,
    private readonly now: () => number = Date.now,
  ) {}

  get held(): number {
    return this.heldNow;
  }

  /** The route entry for `key` once known, or null (answer 404), with why. */
  async resolve(key: string, signal: AbortSignal): Promise<{ entry: RouteEntry | null; outcome: UnknownHostOutcome }> {
    if (this.opts.holdMs <= 0) return { entry: null, outcome: 'not_found' };
    if (this.heldNow >= this.opts.maxHeld) return { entry: null, outcome: 'rejected' };
    this.heldNow++;
    try {
      const until = this.negative.get(key);
      const negative = until !== undefined && until > this.now();
      if (until !== undefined && !negative) this.negative.delete(key);
      let entry = await this.read(key);
      if (entry) return this.found(key, entry);
      if (negative) return { entry: null, outcome: 'negative' };
      entry = await this.routes.waitForEntry(key, this.opts.holdMs, signal);
      if (signal.aborted) return { entry: null, outcome: 'gone' };
      // The notice may have been lost: the last word is Redis's.
      entry ??= await this.read(key);
      if (entry) return this.found(key, entry);
      if (this.negative.size >= 4096) this.negative.clear();
      this.negative.set(key, this.now() + this.opts.negativeMs);
      return { entry: null, outcome: 'not_found' };
    } finally {
      this.heldNow--;
    }
  }

  /** The table got an entry for `key` (any path): it is no longer unknown. */
  forget(key: string): void {
    this.negative.delete(key);
  }

  private found(key: string, entry: RouteEntry) {
    this.negative.delete(key);
    return { entry, outcome: 'found' as const };
  }

  private read(key: string): Promise<RouteEntry | null> {
    let p = this.reads.get(key);
    if (!p) {
      // Redis not answering: treat as "not there yet" (the hold still waits for the notice).
      p = this.routes
        .lookup(key)
        .catch(() => null)
        .finally(() => this.reads.delete(key));
      this.reads.set(key, p);
    }
    return p;
  }
}
