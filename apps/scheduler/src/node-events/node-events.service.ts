import type { Logger } from 'pino';
import type { NodeEventsJob, NodeHeartbeatJob, NodeEventJob, ReplicaReportJob } from '@berth/contracts';
import type { NodeRepository, ReplicaRepository, SchedulerRepository } from '@berth/db';
import type { SchedulerQueues } from '../queues';
import type { RoutePublisher } from '../routing/route-publisher';
import type { LivenessMonitor } from './liveness.monitor';

/** Reports after which a replica no longer holds its address (terminal states). */
const ADDRESS_ENDING_STATES = new Set(['STOPPED', 'FAILED']);

/** Reports that add or remove a routable endpoint. */
const ROUTING_STATES = new Set(['READY', 'RUNNING', 'EXITED', 'BACKOFF', 'FAILED', 'STOPPED', 'LOST']);

/**
 * Consumer of `node-events`: heartbeats, replica reports and agent events.
 * - Heartbeats are coalesced and written in one statement per `heartbeatFlushMs`; a heartbeat from a
 *   DOWN node brings it back READY (the liveness monitor sends it a SyncNodeJob).
 * - Reports go through the transition table with a generation check (ReplicaRepository.applyReport).
 *   Reports about one replica are applied in the order this process received them, even with a
 *   worker concurrency above one.
 */
export class NodeEventsService {
  private beats: { job: NodeHeartbeatJob; at: Date; done: () => void; fail: (e: unknown) => void }[] = [];
  private beatTimer: NodeJS.Timeout | null = null;
  private readonly chains = new Map<string, Promise<unknown>>();
  /** Highest report seq applied per replica (bounded; reports are only reordered within a short window). */
  private readonly lastSeq = new Map<string, number>();

  constructor(
    private readonly nodes: NodeRepository,
    private readonly replicas: ReplicaRepository,
    private readonly scheduler: SchedulerRepository,
    private readonly queues: SchedulerQueues,
    private readonly routes: RoutePublisher,
    private readonly liveness: LivenessMonitor,
    private readonly log: Logger,
    private readonly heartbeatFlushMs = 100,
    /** An agent announced `agent.started` (it gets its image keep-set and pod network state again). */
    private readonly onAgentStarted?: (nodeId: string) => void,
    /** A replica got an address or stopped holding one (the pod network's project address sets change). */
    private readonly onReplicaAddressChange?: () => void,
  ) {}

  handle(job: NodeEventsJob): Promise<void> {
    switch (job.kind) {
      case 'heartbeat':
        return this.heartbeat(job);
      case 'replica-report':
        return this.serialised(job.replicaId, () => this.report(job));
      case 'node-event':
        return this.nodeEvent(job);
      default: {
        const never: never = job;
        throw new Error(`unknown node-events job ${JSON.stringify(never)}`);
      }
    }
  }

  private serialised<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.chains.get(key) ?? Promise.resolve();
    const next = prev.then(fn, fn);
    const tail = next.catch(() => undefined);
    this.chains.set(key, tail);
    void tail.then(() => {
      if (this.chains.get(key) === tail) this.chains.delete(key);
    });
    return next;
  }

  private heartbeat(job: NodeHeartbeatJob): Promise<void> {
    return new Promise((done, fail) => {
      // Receipt time, not the agent's clock: liveness must not depend on clocks agreeing.
      this.beats.push({ job, at: new Date(), done, fail });
      if (!this.beatTimer) this.beatTimer = setTimeout(() => void this.flushBeats(), this.heartbeatFlushMs);
    });
  }

  async flushBeats(): Promise<void> {
    this.beatTimer = null;
    const batch = this.beats;
    this.beats = [];
    if (batch.length === 0) return;
    try {
      const rows = await this.nodes.recordHeartbeats(batch.map((b) => ({ nodeId: b.job.nodeId, at: b.at, cachedImages: b.job.cachedImages })));
      const down = rows.filter((r) => r.status === 'DOWN');
      for (const n of down) await this.liveness.nodeReturned(n.id, n.name);
      const known = new Set(rows.map((r) => r.id));
      for (const b of batch) if (!known.has(b.job.nodeId)) this.log.warn({ nodeId: b.job.nodeId }, 'heartbeat from an unknown node ignored');
      for (const b of batch) b.done();
    } catch (e) {
      for (const b of batch) b.fail(e);
    }
  }

  private async report(job: ReplicaReportJob): Promise<void> {
    if (job.seq !== undefined) {
      const last = this.lastSeq.get(job.replicaId);
      if (last !== undefined && job.seq < last) {
        this.log.debug({ replicaId: job.replicaId, state: job.state }, 'report overtaken by a newer one; dropped');
        return;
      }
      this.lastSeq.delete(job.replicaId);
      this.lastSeq.set(job.replicaId, job.seq);
      if (this.lastSeq.size > 200_000) this.lastSeq.delete(this.lastSeq.keys().next().value!);
    }
    const out = await this.replicas.applyReport({
      replicaId: job.replicaId,
      nodeId: job.nodeId,
      generation: job.generation,
      state: job.state,
      at: new Date(job.at),
      receivedAt: new Date(),
      address: job.address,
      port: job.port,
      exitCode: job.exitCode,
      reason: job.reason,
      restartCount: job.restartCount,
      completed: job.completed,
    });
    if (!out.applied) {
      if (out.why !== 'same') this.log.debug({ replicaId: job.replicaId, state: job.state, why: out.why }, 'report ignored');
      return;
    }
    // READY and the states that end readiness change the endpoints: publish them at once.
    this.routes.markDirty(out.serviceId, ROUTING_STATES.has(job.state));
    if (job.address !== undefined || ADDRESS_ENDING_STATES.has(job.state)) this.onReplicaAddressChange?.();
    // Progress steps need no decision; readiness, exits and stops may move a rollout or free capacity.
    if (job.state === 'READY' || job.state === 'EXITED' || job.state === 'BACKOFF' || job.state === 'FAILED' || job.state === 'STOPPED') {
      await this.queues.enqueueReconcile(out.serviceId, `replica-${job.state.toLowerCase()}`);
    }
    if (job.state === 'FAILED' || (job.state === 'EXITED' && job.reason)) {
      await this.scheduler.appendEvents([
        {
          serviceId: out.serviceId,
          replicaId: job.replicaId,
          nodeId: job.nodeId,
          type: job.state === 'FAILED' ? 'replica.failed' : 'replica.exited',
          level: job.state === 'FAILED' ? 'ERROR' : 'WARN',
          message: `replica ${job.replicaId} ${job.state.toLowerCase()}${job.reason ? `: ${job.reason}` : ''}`,
          data: { exitCode: job.exitCode ?? null, restartCount: job.restartCount ?? null },
          actor: `node:${job.nodeId}`,
        },
      ]);
    }
  }

  private async nodeEvent(job: NodeEventJob): Promise<void> {
    const node = await this.nodes.get(job.nodeId);
    if (!node) return;
    if (job.type === 'agent.started') {
      // A (re)started agent recovered what it found; tell it what it should run so it stops the rest.
      // Commands queued before it started belong to its previous life: drop them (anything still
      // wanted is re-sent); commands sent since are kept.
      const age = Math.max(0, Date.now() - Date.parse(job.at));
      await this.queues.node(job.nodeId).clean(age, 100_000, 'wait');
      const listedAt = Date.now();
      const replicaIds = await this.nodes.replicaIdsToRun(job.nodeId);
      await this.queues.sendToNode(job.nodeId, { kind: 'sync-node', replicaIds, listedAt });
      this.onAgentStarted?.(job.nodeId);
    }
    let serviceId: string | null = null;
    let revisionId: string | null = null;
    if (job.replicaId) {
      const replica = await this.replicas.get(job.replicaId);
      serviceId = replica?.serviceId ?? null;
      revisionId = replica?.revisionId ?? null;
    }
    await this.scheduler.appendEvents([
      {
        serviceId,
        revisionId,
        replicaId: job.replicaId ?? null,
        nodeId: job.nodeId,
        type: job.type,
        level: job.level,
        message: job.message,
        data: { ...(job.data ?? {}), at: job.at },
        actor: `node:${node.name}`,
      },
    ]);
  }

  async close(): Promise<void> {
    if (this.beatTimer) clearTimeout(this.beatTimer);
    await this.flushBeats();
  }
}
