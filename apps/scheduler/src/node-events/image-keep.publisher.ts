import type { Logger } from 'pino';
import type { SchedulerRepository } from '@berth/db';
import type { SchedulerQueues } from '../queues';

/**
 * Tells every node which images it must keep through image garbage collection (`KeepImagesJob`):
 * for each live service, the images of its last `keepRevisions` revisions that ran on the node, so
 * rolling back to them stays pull-free. Images of deleted services drop out, so the agent may
 * collect them. One query for the whole fleet every `intervalMs`; a node gets a command only when
 * its set changed since the last one sent by this scheduler, or when its agent (re)started.
 * (Replicas a node runs are kept by the agent itself; this set is about what is not running.)
 */
export class ImageKeepPublisher {
  private timer: NodeJS.Timeout | null = null;
  private readonly sent = new Map<string, string>();
  private running: Promise<void> | null = null;

  constructor(
    private readonly repo: Pick<SchedulerRepository, 'imageKeepSets'>,
    private readonly queues: Pick<SchedulerQueues, 'sendToNode'>,
    private readonly log: Logger,
    private readonly opts: { intervalMs: number; keepRevisions: number },
  ) {}

  start(): void {
    const loop = () => {
      this.timer = setTimeout(() => void this.publish().finally(() => this.timer && loop()), this.opts.intervalMs);
    };
    loop();
    void this.publish();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The node's agent (re)started: send it its set on the next publish, changed or not. */
  nodeStarted(nodeId: string): void {
    this.sent.delete(nodeId);
    void this.publish();
  }

  /** Computes every node's set and sends those that changed. */
  publish(): Promise<void> {
    if (this.running) return this.running.then(() => this.publish());
    this.running = this.doPublish()
      .catch((err) => this.log.warn({ err: (err as Error).message }, 'could not publish image keep-sets'))
      .finally(() => (this.running = null));
    return this.running;
  }

  private async doPublish(): Promise<void> {
    const computedAt = Date.now();
    const sets = await this.repo.imageKeepSets(this.opts.keepRevisions);
    for (const [nodeId, digests] of sets) {
      const key = digests.join(',');
      if (this.sent.get(nodeId) === key) continue;
      await this.queues.sendToNode(nodeId, { kind: 'keep-images', digests, computedAt });
      this.sent.set(nodeId, key);
    }
    for (const id of [...this.sent.keys()]) if (!sets.has(id)) this.sent.delete(id);
  }
}
