import { QueueName, WakeJob, jobId, wakeJobIdParts } from '@berth/contracts';
import type { Logger } from '@berth/observability';
import { Queue } from 'bullmq';
import type Redis from 'ioredis';

/** Redis key that elects the one gateway process sending a service's wake within a window. */
export const wakeLockKey = (keyPrefix: string, serviceId: string) => `${keyPrefix}berth:gateway:wake-lock:${serviceId}`;

/**
 * Asks the scheduler for a replica of a scaled-to-zero service, ONE wake per service per `dedupeMs`
 * across every gateway process (cluster workers and other hosts alike):
 * - in this process at most one attempt per service per window (no Redis round trip for the others);
 * - across processes a Redis `SET NX PX` lock per service elects the one that enqueues; the others
 *   still count the service as woken (their held requests keep waiting instead of getting 503);
 * - the BullMQ job id is one per service, so a wake still queued absorbs any other add.
 * The lock is released when the service has endpoints (`settled`), so the next scale-from-zero wakes at once.
 */
export class Waker {
  private readonly queue: Queue;
  private readonly lastWake = new Map<string, number>();

  constructor(
    private readonly deps: { connection: Redis; bullPrefix: string; keyPrefix?: string; gatewayId?: string; dedupeMs: number; now: () => number; log: Logger },
  ) {
    this.queue = new Queue(QueueName.Autoscale, { connection: deps.connection, prefix: deps.bullPrefix });
  }

  /** True when this gateway asked for a wake of the service within the dedupe window (it is starting). */
  recentlyWoken(serviceId: string): boolean {
    const at = this.lastWake.get(serviceId);
    return at !== undefined && this.deps.now() - at < this.deps.dedupeMs;
  }

  /**
   * Asks for a wake unless this process already did within the window. Returns true when it asked;
   * `onSent` runs when this process won the lock and enqueued the wake (for the wakes counter).
   */
  wake(serviceId: string, onSent?: () => void): boolean {
    if (this.recentlyWoken(serviceId)) return false;
    const now = this.deps.now();
    this.lastWake.set(serviceId, now);
    void this.send(serviceId, now, onSent);
    return true;
  }

  private async send(serviceId: string, now: number, onSent?: () => void): Promise<void> {
    const lock = wakeLockKey(this.deps.keyPrefix ?? '', serviceId);
    let won = false;
    try {
      won = (await this.deps.connection.set(lock, this.deps.gatewayId ?? String(process.pid), 'PX', this.deps.dedupeMs, 'NX')) === 'OK';
      if (!won) return; // another gateway process sent it
      const job: WakeJob = { kind: 'wake', serviceId, at: new Date(now).toISOString() };
      await this.queue.add('wake', job, { jobId: jobId(...wakeJobIdParts(serviceId)), removeOnComplete: true, removeOnFail: true });
      onSent?.();
    } catch (e) {
      // Let the next request try again instead of waiting out the window.
      this.lastWake.delete(serviceId);
      if (won) await this.deps.connection.del(lock).catch(() => undefined);
      this.deps.log.error({ err: e, serviceId }, 'could not enqueue wake-up');
    }
  }

  /** Forget a service's wake once it has endpoints, so the next scale-from-zero wakes it again at once. */
  settled(serviceId: string): void {
    if (!this.lastWake.delete(serviceId)) return;
    void this.deps.connection.del(wakeLockKey(this.deps.keyPrefix ?? '', serviceId)).catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.queue.close();
  }
}
