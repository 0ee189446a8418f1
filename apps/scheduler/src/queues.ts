import { Queue, type ConnectionOptions } from 'bullmq';
import {
  jobId,
  nodeQueueName,
  QueueName,
  reconcileJobOptions,
  type NodeCommandJob,
  type ReconcileJob,
} from '@berth/contracts';

/**
 * Producer side of the queues the scheduler writes: `reconcile` (to itself) and `node-<id>` (to agents).
 * Reconcile jobs are deduplicated per service with `keepLastIfActive`: a trigger that arrives while the
 * service is being reconciled queues exactly one more run, so no change is missed and no service is
 * reconciled twice at once by this mechanism.
 */
export class SchedulerQueues {
  readonly reconcile: Queue<ReconcileJob>;
  private readonly nodeQueues = new Map<string, Queue<NodeCommandJob>>();

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly prefix: string,
  ) {
    this.reconcile = new Queue<ReconcileJob>(QueueName.Reconcile, { connection, prefix });
  }

  async enqueueReconcile(serviceId: string, cause: string, delayMs = 0): Promise<void> {
    const job: ReconcileJob = { kind: 'reconcile', serviceId, cause };
    if (delayMs > 0) {
      // A timed re-check (rollout deadline) must not swallow or be swallowed by immediate triggers.
      await this.reconcile.add('reconcile', job, {
        jobId: jobId('recheck', serviceId, Date.now() + delayMs),
        delay: delayMs,
        removeOnComplete: true,
        removeOnFail: 100,
      });
      return;
    }
    await this.reconcile.add('reconcile', job, reconcileJobOptions(serviceId));
  }

  async enqueueReconcileMany(serviceIds: Iterable<string>, cause: string): Promise<void> {
    await Promise.all([...new Set(serviceIds)].map((id) => this.enqueueReconcile(id, cause)));
  }

  node(nodeId: string): Queue<NodeCommandJob> {
    let q = this.nodeQueues.get(nodeId);
    if (!q) {
      q = new Queue<NodeCommandJob>(nodeQueueName(nodeId), { connection: this.connection, prefix: this.prefix });
      this.nodeQueues.set(nodeId, q);
    }
    return q;
  }

  /** Commands are idempotent on the agent, so a re-sent command (same id) is harmless. */
  async sendToNode(nodeId: string, cmd: NodeCommandJob): Promise<void> {
    const id =
      cmd.kind === 'start-replica'
        ? jobId('start', cmd.spec.replicaId, cmd.spec.generation)
        : cmd.kind === 'stop-replica'
          ? jobId('stop', cmd.replicaId, cmd.generation)
          : cmd.kind === 'keep-images'
            ? jobId('keep', nodeId, cmd.computedAt)
            : jobId('sync', nodeId, Date.now());
    await this.node(nodeId).add(cmd.kind, cmd, { jobId: id, removeOnComplete: true, removeOnFail: 100 });
  }

  async close(): Promise<void> {
    await Promise.all([this.reconcile.close(), ...[...this.nodeQueues.values()].map((q) => q.close())]);
  }
}
