import { QueueName, WakeJob, jobId, wakeJobIdParts } from '@berth/contracts';
import type { Logger } from '@berth/observability';
import { Queue } from 'bullmq';
import type Redis from 'ioredis';

/**
 * Asks the scheduler for a replica of a scaled-to-zero service. Two layers of deduplication: in this
 * process at most one wake per service per `dedupeMs`, and across gateways the BullMQ job id is one
 * per service, so a wake that is still queued absorbs the others.
 */
export class Waker {
  private readonly queue: Queue;
  private readonly lastWake = new Map<string, number>();

  constructor(private readonly deps: { connection: Redis; bullPrefix: string; dedupeMs: number; now: () => number; log: Logger }) {
    this.queue = new Queue(QueueName.Autoscale, { connection: deps.connection, prefix: deps.bullPrefix });
  }

  /** True when this gateway sent a wake for the service within the dedupe window (it is starting). */
  recentlyWoken(serviceId: string): boolean {
    const at = this.lastWake.get(serviceId);
    return at !== undefined && this.deps.now() - at < this.deps.dedupeMs;
  }

  /** Returns true when a wake was sent (false when one was already on its way). */
  wake(serviceId: string): boolean {
    if (this.recentlyWoken(serviceId)) return false;
    const now = this.deps.now();
    this.lastWake.set(serviceId, now);
    const job: WakeJob = { kind: 'wake', serviceId, at: new Date(now).toISOString() };
    this.queue
      .add('wake', job, { jobId: jobId(...wakeJobIdParts(serviceId)), removeOnComplete: true, removeOnFail: true })
      .catch((e) => {
        // Let the next request try again instead of waiting out the window.
        this.lastWake.delete(serviceId);
        this.deps.log.error({ err: e, serviceId }, 'could not enqueue wake-up');
      });
    return true;
  }

  /** Forget a service's wake once it has endpoints, so the next scale-from-zero wakes it again at once. */
  settled(serviceId: string): void {
    this.lastWake.delete(serviceId);
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
