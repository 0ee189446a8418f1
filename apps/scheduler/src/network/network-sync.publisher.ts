import type { Logger } from 'pino';
import { networkSyncJobOptions, type NetworkSyncJob } from '@berth/contracts';
import type { SchedulerRepository } from '@berth/db';
import { networkSyncKey, networkSyncStates, type NetworkSettings } from '@berth/scheduling';
import type { SchedulerQueues } from '../queues';

export interface NetworkSyncOptions extends NetworkSettings {
  /** Triggers within this window send one sync. */
  debounceMs: number;
  /** Every node gets its state this often, changed or not (a lost job heals). */
  resyncIntervalMs: number;
}

/**
 * Producer of `network-sync` (libs/contracts): the pod network as each node must program it —
 * peers (every other node with a subnet that is not DOWN), project address sets and infrastructure
 * addresses (tenant isolation). Computed for the whole fleet at once (libs/scheduling
 * `networkSyncStates`) and sent to every node with a pod subnet that is not DOWN, only when its
 * state changed since this scheduler last sent it, or when its agent (re)started, or came back from
 * DOWN (its queue was emptied), or on the periodic resync. Triggers are debounced: a burst of
 * joins, replica starts or a node going DOWN sends one sync. Hollow nodes have no subnet: with only
 * them, one indexed query and nothing sent.
 */
export class NetworkSyncPublisher {
  private debounce: NodeJS.Timeout | null = null;
  private resync: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;
  private again: { force: boolean } | null = null;
  private stopped = true;
  /** Per node: the key of the state last sent and the id of that job (removed if still waiting when a newer one goes). */
  private readonly sent = new Map<string, { key: string; jobId: string }>();
  /** Sends made (for tests and metrics). */
  sends = 0;
  /** Whether the last round found any node with a pod subnet (unknown until the first: true). */
  private hasMembers = true;

  constructor(
    private readonly repo: Pick<SchedulerRepository, 'networkState'>,
    private readonly queues: Pick<SchedulerQueues, 'node'>,
    private readonly log: Logger,
    private readonly opts: NetworkSyncOptions,
  ) {}

  start(): void {
    this.stopped = false;
    const loop = () => {
      this.resync = setTimeout(() => void this.publish(true).finally(() => !this.stopped && loop()), this.opts.resyncIntervalMs);
    };
    loop();
    void this.publish(true);
  }

  stop(): void {
    this.stopped = true;
    if (this.debounce) clearTimeout(this.debounce);
    if (this.resync) clearTimeout(this.resync);
    this.debounce = this.resync = null;
  }

  /**
   * Something the pod network depends on changed: a node's status (`nodes`) or a replica's address
   * (`replicas`): sync soon. Replica changes are ignored while no node has a pod subnet (a fleet of
   * hollow nodes: the bench's thousands of reports cost no query).
   */
  trigger(what: 'nodes' | 'replicas' = 'nodes'): void {
    if (what === 'replicas' && !this.hasMembers) return;
    if (this.stopped || this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = null;
      void this.publish(false);
    }, this.opts.debounceMs);
  }

  /** The node's agent (re)started or the node came back: it gets its state on the next sync, changed or not. */
  nodeStarted(nodeId: string): void {
    this.sent.delete(nodeId);
    this.trigger();
  }

  /** Computes every node's state and sends those that changed (all when `force`). Never rejects. */
  publish(force: boolean): Promise<void> {
    if (this.running) {
      // One run at a time; what is asked meanwhile runs once after it.
      this.again = { force: force || (this.again?.force ?? false) };
      return this.running;
    }
    this.running = this.doPublish(force)
      .catch((err) => this.log.warn({ err: (err as Error).message }, 'could not publish the pod network'))
      .finally(() => {
        this.running = null;
        const next = this.again;
        this.again = null;
        if (next && !this.stopped) void this.publish(next.force);
      });
    return this.running;
  }

  private async doPublish(force: boolean): Promise<void> {
    const computedAt = Date.now();
    const { nodes, replicas } = await this.repo.networkState();
    this.hasMembers = nodes.length > 0;
    const states = networkSyncStates(nodes, replicas, this.opts, computedAt);
    let sent = 0;
    for (const [nodeId, state] of states) {
      const key = networkSyncKey(state);
      const last = this.sent.get(nodeId);
      if (!force && last?.key === key) continue;
      const jobId = await this.send(nodeId, state, last?.jobId);
      this.sent.set(nodeId, { key, jobId });
      sent++;
    }
    for (const id of [...this.sent.keys()]) if (!states.has(id)) this.sent.delete(id);
    this.sends += sent;
    if (sent > 0) this.log.debug({ nodes: sent, force }, 'network-sync sent');
  }

  private async send(nodeId: string, state: NetworkSyncJob, previousJobId: string | undefined): Promise<string> {
    const q = this.queues.node(nodeId);
    // Only the newest full state matters: drop the previous one if the agent has not taken it yet.
    if (previousJobId) await q.remove(previousJobId).catch(() => undefined);
    const opts = networkSyncJobOptions(nodeId, state.computedAt);
    await q.add('network-sync', state, opts);
    return opts.jobId;
  }
}
