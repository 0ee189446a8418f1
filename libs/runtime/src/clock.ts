/** Time as a port: production uses `systemClock`; tests drive a `ManualClock` without sleeping. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerId;
  clearTimeout(id: TimerId): void;
}
export type TimerId = { readonly __timer: true } | number | NodeJS.Timeout;

export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    return t;
  },
  clearTimeout: (id) => clearTimeout(id as NodeJS.Timeout),
};

export function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

/** A clock that only moves when told to; `advance` fires due timers in order and lets promises settle. */
export class ManualClock implements Clock {
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void; seq: number }>();
  constructor(private current = 0) {}

  now(): number {
    return this.current;
  }
  setTimeout(fn: () => void, ms: number): TimerId {
    const id = ++this.seq;
    this.timers.set(id, { at: this.current + Math.max(0, ms), fn, seq: id });
    return id;
  }
  clearTimeout(id: TimerId): void {
    this.timers.delete(id as number);
  }
  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward by `ms`, running every timer that falls due (including ones scheduled meanwhile). */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    await flushPromises();
    for (;;) {
      let next: [number, { at: number; fn: () => void; seq: number }] | undefined;
      for (const entry of this.timers) {
        if (entry[1].at > target) continue;
        if (!next || entry[1].at < next[1].at || (entry[1].at === next[1].at && entry[1].seq < next[1].seq)) next = entry;
      }
      if (!next) break;
      this.timers.delete(next[0]);
      this.current = Math.max(this.current, next[1].at);
      next[1].fn();
      await flushPromises();
    }
    this.current = target;
    await flushPromises();
  }
}

/** Lets queued promise callbacks (and the chains they start) run. */
export async function flushPromises(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise<void>((r) => setImmediate(r));
}
