import type { ConcurrencySample } from './kpa';

/**
 * Recent concurrency samples of one service, oldest first, bounded by the longest window the decider
 * reads. Time is passed in; nothing here reads a clock.
 */
export class ConcurrencyWindow {
  private samples: ConcurrencySample[] = [];

  constructor(private readonly keepMs: number) {}

  add(sample: ConcurrencySample): void {
    // Samples arrive in time order from one loop; an out-of-order one is dropped rather than re-sorted.
    const last = this.samples[this.samples.length - 1];
    if (last && sample.at <= last.at) return;
    this.samples.push(sample);
    this.prune(sample.at);
  }

  prune(now: number): void {
    let drop = 0;
    while (drop < this.samples.length && this.samples[drop].at <= now - this.keepMs) drop++;
    if (drop > 0) this.samples.splice(0, drop);
  }

  values(): readonly ConcurrencySample[] {
    return this.samples;
  }

  /** Forget history, e.g. after a wake-up so a long idle stretch does not pull the averages down. */
  clear(): void {
    this.samples = [];
  }
}
