import type { Logger } from 'pino';
import type { NodeRepository, SchedulerRepository } from '@berth/db';
import type { SchedulerQueues } from '../queues';

export interface LivenessOptions {
  heartbeatIntervalMs: number;
  missedBeats: number;
  checkIntervalMs: number;
  now?: () => number;
  /** Nodes were marked DOWN (the pod network withdraws routes to them). */
  onNodesDown?: (nodeIds: string[]) => void;
  /** A DOWN node is READY again (its queue was emptied: it needs its state again). */
  onNodeBack?: (nodeId: string) => void;
}

/**
 * Node liveness. A READY/DRAINING node silent for `missedBeats × heartbeatIntervalMs` becomes DOWN
 * and its replicas LOST, and their services are reconciled so replacements go to healthy nodes.
 * A DOWN node heard from again becomes READY; its waiting commands are dropped and it gets a
 * SyncNodeJob listing what it should run (nothing: its replicas were LOST), so its agent stops
 * the stale containers. Nothing is marked DOWN during the first 2 × grace + 1 s after start, so a
 * scheduler that was itself down does not condemn the whole fleet.
 */
export class LivenessMonitor {
  private timer: NodeJS.Timeout | null = null;
  private readonly startedAt: number;

  constructor(
    private readonly nodes: NodeRepository,
    private readonly scheduler: SchedulerRepository,
    private readonly queues: SchedulerQueues,
    private readonly log: Logger,
    private readonly opts: LivenessOptions,
  ) {
    this.startedAt = this.now();
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  get graceMs(): number {
    return this.opts.heartbeatIntervalMs * this.opts.missedBeats;
  }

  start(): void {
    const tick = () =>
      this.check()
        .catch((e) => this.log.error({ err: e }, 'liveness check failed'))
        .finally(() => {
          if (this.timer) this.timer = setTimeout(tick, this.opts.checkIntervalMs);
        });
    this.timer = setTimeout(tick, this.opts.checkIntervalMs);
  }

  async check(): Promise<string[]> {
    const now = this.now();
    // After a scheduler (re)start, agents' queued heartbeats must be worked off before silence means anything.
    if (now - this.startedAt < 2 * this.graceMs + 1000) return [];
    const down = await this.nodes.markSilentNodesDown(new Date(now - this.graceMs));
    if (down.length === 0) return [];
    const reason = `node stopped heartbeating (${this.opts.missedBeats} missed at ${this.opts.heartbeatIntervalMs} ms)`;
    const lost = await this.nodes.loseReplicasOn(
      down.map((n) => n.id),
      reason,
      new Date(now),
    );
    const names = new Map(down.map((n) => [n.id, n.name]));
    await this.scheduler.appendEvents([
      ...down.map((n) => ({ nodeId: n.id, type: 'node.down', level: 'ERROR' as const, message: `node ${n.name} is down: ${reason}`, actor: 'system' })),
      ...lost.map((r) => ({
        serviceId: r.serviceId,
        replicaId: r.id,
        revisionId: r.revisionId,
        nodeId: r.nodeId,
        type: 'replica.lost',
        level: 'WARN' as const,
        message: `replica ${r.id} lost: node ${names.get(r.nodeId)} is down`,
        actor: 'system',
      })),
    ]);
    this.log.warn({ nodes: down.map((n) => n.name), lost: lost.length }, 'nodes down');
    this.opts.onNodesDown?.(down.map((n) => n.id));
    await this.queues.enqueueReconcileMany(
      lost.map((r) => r.serviceId),
      'node-down',
    );
    return down.map((n) => n.id);
  }

  /** A DOWN node heartbeats again: READY, drop its queued commands, tell it what to run, retry pending work. */
  async nodeReturned(nodeId: string, name: string): Promise<void> {
    if (!(await this.nodes.revive(nodeId))) return;
    const q = this.queues.node(nodeId);
    await q.drain(true);
    const listedAt = Date.now();
    const replicaIds = await this.nodes.replicaIdsToRun(nodeId);
    await this.queues.sendToNode(nodeId, { kind: 'sync-node', replicaIds, listedAt });
    this.opts.onNodeBack?.(nodeId);
    await this.scheduler.appendEvents([
      { nodeId, type: 'node.ready', level: 'INFO', message: `node ${name} is back; it keeps ${replicaIds.length} replica(s)`, actor: 'system' },
    ]);
    this.log.info({ node: name }, 'node back');
    await this.queues.enqueueReconcileMany(await this.nodes.servicesWithPendingReplicas(), 'node-ready');
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
