import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isEmptyPlan, plan, type NodeView, type Plan, type Resources } from '@berth/scheduling';
import { StalePlanError, type NodeWithAllocation, type PlanWrite, type SchedulerRepository, type ServiceState } from '../db';
import type { BatchStore } from './batch-store';
import type { SchedulerQueues } from '../queues';
import type { RoutePublisher } from '../routing/route-publisher';
import type { NodeCommandBatch, ReplicaCommand } from './node-command-batch';
import type { NodeSnapshotCache } from './node-snapshot.cache';
import { replicaSpec, revisionConfig, toNodeView, toReplicaView, toRevisionView, toServiceView } from './replica-spec';

export interface ReconcileOptions {
  rolloutDeadlineMs: number;
  minReadyMs: number;
  commandResendAfterMs: number;
  stopGraceMs: number;
  maxConflicts?: number;
  /** Feasible nodes scored per placement (0 = all); each plan starts at a random node. */
  placementSample?: number;
  /** Where a plan's placement scan starts, in [0, 1) of the fleet (injectable for tests). */
  random?: () => number;
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
    /** Batched reads/writes for `reconcileBatch`; without it batches run service by service. */
    private readonly batch?: BatchStore,
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
      const now = this.now();
      const planned = this.planFor(state, nodeRows, now);
      const { p } = planned;
      if (planned.write) {
        const release = this.nodes.reserve(planned.targets, planned.res);
        try {
          await this.timed('commit', () => this.repo.commitPlan(planned.write!));
          for (const id of planned.targets) this.nodes.allocate(id, planned.res);
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
        await this.timed('send', () => this.sendCommands(this.commandsFor(p, state)));
        this.logPlan(p, cause);
      }
      await this.timed('enqueue', () => this.afterCommit(p, state, now));
      this.counts.reconciles++;
      this.routes.markDirty(serviceId, activates(p));
      return { conflicts, plan: p };
    }
  }

  /**
   * Reconciles several services with one read, one transaction and one command send (the same
   * plans and guards as `reconcile`, a fixed number of round trips per batch instead of per
   * service). Plans are computed one after another, each seeing the placements of the previous
   * ones. If any guard misses, nothing of the batch is written and every service of it goes
   * through `reconcile` on its own (which re-reads and retries).
   */
  async reconcileBatch(items: readonly { serviceId: string; cause: string }[]): Promise<Map<string, ReconcileOutcome>> {
    const out = new Map<string, ReconcileOutcome>();
    if (!this.batch || items.length === 1) {
      for (const it of items) out.set(it.serviceId, await this.reconcile(it.serviceId, it.cause));
      return out;
    }
    const batch = this.batch;
    const states = await this.timed('load', () => batch.loadServiceStates(items.map((i) => i.serviceId)));
    const base = await this.timed('nodes', () => this.nodes.base());
    const fleet = this.batchViews(base);
    const now = this.now();
    const planned: { item: (typeof items)[number]; state: ServiceState; p: Plan; write: PlanWrite | null }[] = [];
    const releases: (() => void)[] = [];
    const allocations: { targets: string[]; res: Resources }[] = [];
    try {
      for (const item of items) {
        const state = states.get(item.serviceId);
        if (!state) {
          this.routes.markDirty(item.serviceId);
          out.set(item.serviceId, { conflicts: 0, plan: null });
          continue;
        }
        const x = this.planFor(state, fleet, now);
        planned.push({ item, state, p: x.p, write: x.write });
        if (x.targets.length > 0) {
          // Later plans of the batch (and concurrent reconciles) see these placements.
          releases.push(this.nodes.reserve(x.targets, x.res));
          allocations.push({ targets: x.targets, res: x.res });
          for (const id of x.targets) fleet.add(id, x.res);
        }
      }
      const writes = planned.flatMap((x) => (x.write ? [x.write] : []));
      try {
        await this.timed('commit', () => batch.commitPlans(writes));
      } catch (e) {
        if (!(e instanceof StalePlanError)) throw e;
        this.log.debug({ services: writes.length, err: e.message }, 'batch went stale; reconciling its services one by one');
        this.nodes.invalidate();
        this.counts.conflicts++;
        for (const r of releases.splice(0)) r();
        for (const x of planned) out.set(x.item.serviceId, await this.reconcile(x.item.serviceId, x.item.cause));
        return out;
      }
      for (const a of allocations) for (const id of a.targets) this.nodes.allocate(id, a.res);
    } finally {
      for (const r of releases) r();
    }
    await this.timed('send', () => this.sendCommands(planned.flatMap((x) => (x.write ? this.commandsFor(x.p, x.state) : []))));
    await this.timed('enqueue', () => Promise.all(planned.map((x) => this.afterCommit(x.p, x.state, now))));
    for (const x of planned) {
      if (x.write) this.logPlan(x.p, x.item.cause);
      this.counts.reconciles++;
      this.routes.markDirty(x.item.serviceId, activates(x.p));
      out.set(x.item.serviceId, { conflicts: 0, plan: x.p });
    }
    return out;
  }

  /**
   * Node views for one batch: built once per loaded snapshot (labels/images parsed once), refreshed
   * only where an allocation changed, plus plans in flight; `add` accounts the batch's own placements.
   */
  private viewCache: { rows: NodeWithAllocation[]; alloc: NodeWithAllocation['allocated'][]; views: NodeView[]; index: Map<string, number>; byId: Map<string, NodeView> } | null = null;

  private batchViews(rows: NodeWithAllocation[]) {
    let c = this.viewCache;
    if (!c || c.rows !== rows) {
      const views = rows.map(toNodeView);
      c = { rows, alloc: rows.map((r) => r.allocated), views, index: new Map(rows.map((r, i) => [r.id, i])), byId: new Map(views.map((v) => [v.id, v])) };
      this.viewCache = c;
    } else {
      for (let i = 0; i < rows.length; i++) {
        if (rows[i]!.allocated === c.alloc[i]) continue;
        c.alloc[i] = rows[i]!.allocated;
        c.views[i] = { ...c.views[i]!, allocated: rows[i]!.allocated };
      }
    }
    const cache = c;
    const views = cache.views.slice();
    const add = (id: string, r: Resources) => {
      const i = cache.index.get(id);
      if (i === undefined) return;
      const v = views[i]!;
      views[i] = { ...v, allocated: { cpuMillis: v.allocated.cpuMillis + r.cpuMillis, memoryMiB: v.allocated.memoryMiB + r.memoryMiB, pids: v.allocated.pids + r.pids } };
    };
    for (const [id, r] of this.nodes.inFlightByNode()) add(id, r);
    return { views, byId: cache.byId as ReadonlyMap<string, NodeView>, add };
  }

  /** The pure plan for one service on a node snapshot, and what writing it takes. */
  private planFor(state: ServiceState, fleet: readonly NodeWithAllocation[] | { views: NodeView[]; byId: ReadonlyMap<string, NodeView> }, now: number) {
    const nodeViews = 'views' in fleet ? fleet.views : fleet.map((n) => this.nodeView(n));
    const target = state.revisions.find((r) => r.id === state.service.activeRevisionId);
    const tPlan = performance.now();
    const p = plan(
      {
        service: toServiceView(state.service, target),
        revisions: state.revisions.map(toRevisionView),
        replicas: state.replicas.map(toReplicaView),
        nodes: nodeViews,
        nodeIndex: 'views' in fleet ? fleet.byId : undefined,
      },
      {
        now,
        rolloutDeadlineMs: this.opts.rolloutDeadlineMs,
        minReadyMs: this.opts.minReadyMs,
        deadlineNotBefore: this.startedAt,
        newId: randomUUID,
        sampling: { limit: this.opts.placementSample ?? 0, offset: Math.floor((this.opts.random ?? Math.random)() * nodeViews.length) },
      },
    );
    this.phaseMs.plan += performance.now() - tPlan;
    if (isEmptyPlan(p)) return { p, write: null, targets: [] as string[], res: { cpuMillis: 0, memoryMiB: 0, pids: 0 } };
    const write = this.toWrite(p, state, now);
    const res = toServiceView(state.service, target).resources;
    const targets = [...write.creates.flatMap((c) => (c.nodeId ? [c.nodeId] : [])), ...write.places.map((pl) => pl.nodeId)];
    return { p, write, targets, res };
  }

  private logPlan(p: Plan, cause: string) {
    this.log.info(
      {
        serviceId: p.serviceId,
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

  /** After the commit (or for an empty plan): lost commands, rollback and timed re-checks. */
  private async afterCommit(p: Plan, state: ServiceState, now: number) {
    await this.resendStuckCommands(state, now);
    if (p.activeRevisionId !== undefined) await this.queues.enqueueReconcile(p.serviceId, 'rollback');
    if (p.recheckAt !== null) await this.queues.enqueueReconcile(p.serviceId, 'rollout-deadline', Math.max(1, p.recheckAt - now));
  }

  private toWrite(p: Plan, state: ServiceState, now: number): PlanWrite {
    const svc = state.service;
    const revisionPort = (revisionId: string) => revisionConfig(state.revisions.find((r) => r.id === revisionId)!).port;
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

  private commandsFor(p: Plan, state: ServiceState): { nodeId: string; cmd: ReplicaCommand }[] {
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
    return out;
  }

  private async sendCommands(out: { nodeId: string; cmd: ReplicaCommand }[]) {
    if (out.length === 0) return;
    if (this.opts.commands) await this.opts.commands.send(out);
    else await Promise.all(out.map((o) => this.queues.sendToNode(o.nodeId, o.cmd)));
  }

  /** Start/stop commands lost between a commit and a crash: replicas still SCHEDULED/STOPPING after a while. */
  private async resendStuckCommands(state: ServiceState, now: number) {
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

/**
 * A plan that makes a revision ACTIVE: clients (the CLI, the dashboard) report the deploy done as
 * soon as they read that, so its routing entry is published at once rather than at the next flush.
 */
function activates(p: Plan): boolean {
  return p.revisions.some((r) => r.to === 'ACTIVE');
}
