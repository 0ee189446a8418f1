import type { ReconcileOutcome } from './reconcile.service';

export interface BatchItem {
  serviceId: string;
  cause: string;
}

/**
 * Group commit for reconcile jobs: jobs the workers hand over while a batch is running are
 * reconciled together by the next one (one read, one transaction, one command send for the lot),
 * so batches grow with load and a lone job still runs at once. A service is never in two running
 * batches at the same time; a trigger for a service that is already waiting joins that entry (it
 * has not started yet, so it still sees the trigger's change). If a batch fails as a whole, each of
 * its services is reconciled on its own, so one failing service cannot fail the others' jobs.
 */
export class ReconcileBatcher {
  private readonly pending = new Map<string, { cause: string; waiters: { resolve: (o: ReconcileOutcome) => void; reject: (e: unknown) => void }[] }>();
  private readonly running = new Set<string>();
  private active = 0;
  private scheduled = false;

  constructor(
    private readonly runBatch: (items: BatchItem[]) => Promise<Map<string, ReconcileOutcome>>,
    private readonly runOne: (serviceId: string, cause: string) => Promise<ReconcileOutcome>,
    /** Most services per batch. */
    private readonly maxBatch: number,
    /** Batches running at once (one can be in the database while the next is planned). */
    private readonly maxParallel = 2,
  ) {}

  submit(serviceId: string, cause: string): Promise<ReconcileOutcome> {
    return new Promise((resolve, reject) => {
      const e = this.pending.get(serviceId);
      if (e) e.waiters.push({ resolve, reject });
      else this.pending.set(serviceId, { cause, waiters: [{ resolve, reject }] });
      this.schedule();
    });
  }

  /** Jobs waiting for a batch (for tests and metrics). */
  get waiting(): number {
    return this.pending.size;
  }

  private schedule() {
    if (this.scheduled) return;
    this.scheduled = true;
    // Next turn of the event loop: jobs delivered in the same turn join one batch.
    setImmediate(() => {
      this.scheduled = false;
      this.pump();
    });
  }

  private pump() {
    while (this.active < this.maxParallel) {
      const items: (BatchItem & { waiters: { resolve: (o: ReconcileOutcome) => void; reject: (e: unknown) => void }[] })[] = [];
      for (const [serviceId, e] of this.pending) {
        if (this.running.has(serviceId)) continue;
        items.push({ serviceId, cause: e.cause, waiters: e.waiters });
        this.pending.delete(serviceId);
        if (items.length >= this.maxBatch) break;
      }
      if (items.length === 0) return;
      this.active++;
      for (const it of items) this.running.add(it.serviceId);
      void this.execute(items).finally(() => {
        this.active--;
        for (const it of items) this.running.delete(it.serviceId);
        if (this.pending.size > 0) this.schedule();
      });
    }
  }

  private async execute(items: (BatchItem & { waiters: { resolve: (o: ReconcileOutcome) => void; reject: (e: unknown) => void }[] })[]) {
    let out: Map<string, ReconcileOutcome> | null = null;
    try {
      out = await this.runBatch(items.map(({ serviceId, cause }) => ({ serviceId, cause })));
    } catch {
      out = null;
    }
    for (const it of items) {
      let o = out?.get(it.serviceId);
      if (!o) {
        try {
          o = await this.runOne(it.serviceId, it.cause);
        } catch (e) {
          for (const w of it.waiters) w.reject(e);
          continue;
        }
      }
      for (const w of it.waiters) w.resolve(o);
    }
  }
}
