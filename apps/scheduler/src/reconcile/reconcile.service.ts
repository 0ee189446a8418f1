import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isEmptyPlan, plan, type NodeView, type Plan } from '@berth/scheduling';
import { StalePlanError, type NodeWithAllocation, type PlanWrite, type SchedulerRepository } from '../db';
import type { SchedulerQueues } from '../queues';
import type { RoutePublisher } from '../routing/route-publisher';
import type { NodeCommandBatch, ReplicaCommand } from './node-command-batch';
import type { NodeSnapshotCache } from './node-snapshot.cache';
import { replicaSpec, toNodeView, toReplicaView, toRevisionView, toServiceView } from './replica-spec';

export interface ReconcileOptions {
  rolloutDeadlineMs: number;
  minReadyMs: number;
  commandResendAfterMs: number;
  stopGraceMs: number;
  maxConflicts?: number;
  now?: () => number;
  /** When this scheduler started: rollouts get a full deadline from here after a restart. */
  startedAt?: number;
  /** Sends a plan's commands in one batch; without it each goes through `SchedulerQueues.sendToNode`. */
  commands?: Pick<NodeCommandBatch, 'send'>;
}

export interface ReconcileOutcome {
  conflicts: number;
  plan: Plan | null;
}

/**
 * One reconcile of one service (sample-controller style): read desired + actual state, compute the
 * plan with the pure `plan()`, write it in one guarded transaction (retrying on a stale read), then
 * send start/stop commands to the nodes. Commands go out after the commit; a crash in between is
 * healed by re-sending commands for replicas that stayed SCHEDULED/STOPPING too long.
 */
export class ReconcileService {
  constructor(
    private readonly repo: SchedulerRepository,
    private readonly nodes: NodeSnapshotCache,
    private readonly queues: SchedulerQueues,
    private readonly routes: RoutePublisher,
    private readonly log: Logger,
    private readonly opts: ReconcileOptions,
  ) {
    this.startedAt = opts.startedAt ?? this.now();
  }

  private readonly startedAt: number;

  /** Cumulative wall time per reconcile phase (ms) and counts; read by bench/schedule to find where time goes. */
  readonly phaseMs: Record<'load' | 'nodes' | 'plan' | 'commit' | 'send' | 'enqueue', number> = { load: 0, nodes: 0, plan: 0, commit: 0, send: 0, enqueue: 0 };
  readonly counts = { reconciles: 0, conflicts: 0 };

  private async timed<T>(phase: keyof ReconcileService['phaseMs'], f: () => Promise<T>): Promise<T> {
    const t = performance.now();
    try {
      return await f();
    } finally {
      this.phaseMs[phase] += performance.now() - t;
    }
  }

  /** Node views by row: labels/images are parsed once per snapshot load, not per reconcile (1000s of nodes). */
  private readonly views = new WeakMap<NodeWithAllocation, NodeView>();

  private nodeView(n: NodeWithAllocation): NodeView {
    const v = this.views.get(n);
    if (v && v.allocated === n.allocated) return v;
    const next = v ? { ...v, allocated: n.allocated } : toNodeView(n);
    this.views.set(n, next);
    return next;
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  async reconcile(serviceId: string, cause: string): Promise<ReconcileOutcome> {
    const maxConflicts = this.opts.maxConflicts ?? 8;
    for (let conflicts = 0; ; conflicts++) {
      const state = await this.timed('load', () => this.repo.loadServiceState(serviceId));
      if (!state) {
        this.routes.markDirty(serviceId);
        return { conflicts, plan: null };
      }
      const nodeRows = await this.timed('nodes', () => this.nodes.get());
      const target = state.revisions.find((r) => r.id === state.service.activeRevisionId);
      const now = this.now();
      const tPlan = performance.now();
      const p = plan(
        {
          service: toServiceView(state.service, target),
          revisions: state.revisions.map((r) => toRevisionView(r, state.service)),
          replicas: state.replicas.map(toReplicaView),
          nodes: nodeRows.map((n) => this.nodeView(n)),
        },
        { now, rolloutDeadlineMs: this.opts.rolloutDeadlineMs, minReadyMs: this.opts.minReadyMs, deadlineNotBefore: this.startedAt, newId: randomUUID },
      );
      this.phaseMs.plan += performance.now() - tPlan;
      if (!isEmptyPlan(p)) {
        const write = this.toWrite(p, state, now);
        const res = toServiceView(state.service, target).resources;
        const targets = [...write.creates.flatMap((c) => (c.nodeId ? [c.nodeId] : [])), ...write.places.map((pl) => pl.nodeId)];
        const release = this.nodes.reserve(targets, res);
        try {
          await this.timed('commit', () => this.repo.commitPlan(write));
          for (const id of targets) this.nodes.allocate(id, res);
        } catch (e) {
          if (e instanceof StalePlanError && conflicts < maxConflicts) {
            this.log.debug({ serviceId, err: e.message }, 'plan went stale; re-planning');
            this.nodes.invalidate();
            this.counts.conflicts++;
            continue;
          }
          throw e;
        } finally {
          release();
        }
        await this.timed('send', () => this.sendCommands(p, state));
        this.log.info(
          {
            serviceId,
            cause,
            create: p.create.length,
            place: p.place.length,
            stop: p.stop.length,
            lost: p.lost.length,
            revisions: p.revisions.map((r) => `${r.revisionId}:${r.to}`),
          },
          'reconciled',
        );
      }
      await this.timed('enqueue', async () => {
        await this.resendStuckCommands(state, now);
        if (p.activeRevisionId !== undefined) await this.queues.enqueueReconcile(serviceId, 'rollback');
        if (p.recheckAt !== null) await this.queues.enqueueReconcile(serviceId, 'rollout-deadline', Math.max(1, p.recheckAt - now));
      });
      this.counts.reconciles++;
      this.routes.markDirty(serviceId);
      return { conflicts, plan: p };
    }
  }

  private toWrite(p: Plan, state: NonNullable<Awaited<ReturnType<SchedulerRepository['loadServiceState']>>>, now: number): PlanWrite {
    const svc = state.service;
    const revisionPort = (revisionId: string) => {
      const rev = state.revisions.find((r) => r.id === revisionId);
      const c = rev?.config as { port?: unknown } | null;
      return typeof c?.port === 'number' ? c.port : svc.port;
    };
    return {
      serviceId: svc.id,
      projectId: svc.projectId,
      expectedGeneration: svc.generation,
      now: new Date(now),
      creates: p.create.map((c) => ({ id: c.replicaId, revisionId: c.revisionId, nodeId: c.nodeId, pendingReason: c.pendingReason, port: revisionPort(c.revisionId) })),
      places: p.place.map((x) => ({ id: x.replicaId, generation: x.generation, nodeId: x.nodeId })),
      pendingReasons: p.pending.map((x) => ({ id: x.replicaId, generation: x.generation, reason: x.reason })),
      stops: p.stop.map((s) => ({ id: s.replicaId, generation: s.generation, to: s.nodeId && s.from !== 'PENDING' ? 'STOPPING' : 'STOPPED', reason: s.reason })),
      lost: p.lost.map((l) => ({ id: l.replicaId, generation: l.generation, reason: l.reason })),
      revisions: p.revisions.map((r) => ({ id: r.revisionId, from: r.from, to: r.to, reason: r.reason })),
      activeRevisionId: p.activeRevisionId,
      events: p.events,
    };
  }

  private async sendCommands(p: Plan, state: NonNullable<Awaited<ReturnType<SchedulerRepository['loadServiceState']>>>) {
    const out: { nodeId: string; cmd: ReplicaCommand }[] = [];
    const revs = new Map(state.revisions.map((r) => [r.id, r]));
    for (const c of p.create) {
      if (!c.nodeId) continue;
      const spec = replicaSpec(state.service, revs.get(c.revisionId)!, { id: c.replicaId, generation: 1 });
      out.push({ nodeId: c.nodeId, cmd: { kind: 'start-replica', spec } });
    }
    const replicas = new Map(state.replicas.map((r) => [r.id, r]));
    for (const pl of p.place) {
      const r = replicas.get(pl.replicaId)!;
      const spec = replicaSpec(state.service, revs.get(r.revisionId)!, { id: r.id, generation: pl.generation + 1 });
      out.push({ nodeId: pl.nodeId, cmd: { kind: 'start-replica', spec } });
    }
    for (const s of p.stop) {
      if (!s.nodeId || s.from === 'PENDING') continue;
      out.push({
        nodeId: s.nodeId,
        cmd: { kind: 'stop-replica', replicaId: s.replicaId, generation: s.generation + 1, reason: s.reason, graceMs: this.opts.stopGraceMs },
      });
    }
    if (this.opts.commands) await this.opts.commands.send(out);
    else await Promise.all(out.map((o) => this.queues.sendToNode(o.nodeId, o.cmd)));
  }

  /** Start/stop commands lost between a commit and a crash: replicas still SCHEDULED/STOPPING after a while. */
  private async resendStuckCommands(state: NonNullable<Awaited<ReturnType<SchedulerRepository['loadServiceState']>>>, now: number) {
    const stuck = state.replicas.filter(
      (r) => (r.state === 'SCHEDULED' || r.state === 'STOPPING') && r.nodeId && r.updatedAt.getTime() < now - this.opts.commandResendAfterMs,
    );
    if (stuck.length === 0) return;
    const revs = new Map(state.revisions.map((r) => [r.id, r]));
    await Promise.all(
      stuck.map((r) => {
        const rev = revs.get(r.revisionId);
        if (r.state === 'SCHEDULED' && rev)
          return this.queues.sendToNode(r.nodeId!, { kind: 'start-replica', spec: replicaSpec(state.service, rev, r) });
        return this.queues.sendToNode(r.nodeId!, {
          kind: 'stop-replica',
          replicaId: r.id,
          generation: r.generation,
          reason: r.lastExitReason ?? 'stop',
          graceMs: this.opts.stopGraceMs,
        });
      }),
    );
    this.log.warn({ serviceId: state.service.id, replicas: stuck.map((r) => r.id) }, 're-sent commands not acknowledged in time');
  }
}
