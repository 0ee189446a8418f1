import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { isEmptyPlan, plan, type NodeView, type Plan, type Resources } from '@berth/scheduling';
import { StalePlanError, type PlanWrite, type SchedulerRepository, type ServiceState } from '@berth/db';
import type { SchedulerQueues } from '../queues';
import type { RoutePublisher } from '../routing/route-publisher';
import type { NodeCommandBatch, ReplicaCommand } from './node-command-batch';
import type { FleetSnapshot, NodeSnapshotCache } from './node-snapshot.cache';
import { replicaSpec, revisionConfig, toNodeView, toReplicaView, toRevisionView, toServiceView } from './replica-spec';

/** The database port of the reconcile: one read and one guarded write for any number of services. */
export type ReconcileStore = Pick<SchedulerRepository, 'loadServiceStates' | 'commitPlans'>;

export type ReconcilePhase = 'load' | 'nodes' | 'plan' | 'commit' | 'send' | 'enqueue';

/** Optional hooks for metrics and benchmarks; the reconcile does not depend on them. */
export interface ReconcileObserver {
  /** Wall time of one phase of one batch (`plan`: of one service). */
  phase?(phase: ReconcilePhase, ms: number): void;
  /** A plan (of a batch, or of one service) went stale and is re-planned. */
  conflict?(): void;
  /** One service reconciled (written, or nothing to write). */
  reconciled?(serviceId: string, outcome: ReconcileOutcome): void;
}

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
  observer?: ReconcileObserver;
}

export interface ReconcileOutcome {
  conflicts: number;
  plan: Plan | null;
}

export interface ReconcileItem {
  serviceId: string;
  cause: string;
}

/**
 * Reconciles services (sample-controller style), a batch at a time; one service is a batch of one.
 * Read desired + actual state of the batch, compute each plan with the pure `plan()` (each seeing
 * the placements of the previous ones), write them all in one guarded transaction, then send the
 * start/stop commands to the nodes in one go. If any guard misses, nothing of the batch is written
 * and each of its services is re-planned on its own (retried up to `maxConflicts` times on stale
 * reads). Commands go out after the commit; a crash in between is healed by re-sending commands
 * for replicas that stayed SCHEDULED/STOPPING too long.
 */
export class ReconcileService {
  constructor(
    private readonly store: ReconcileStore,
    private readonly nodes: Pick<NodeSnapshotCache, 'snapshot' | 'inFlightByNode' | 'invalidate' | 'reserve' | 'allocate'>,
    private readonly queues: Pick<SchedulerQueues, 'enqueueReconcile' | 'sendToNode'>,
    private readonly routes: Pick<RoutePublisher, 'markDirty'>,
    private readonly log: Logger,
    private readonly opts: ReconcileOptions,
  ) {
    this.startedAt = opts.startedAt ?? this.now();
  }

  private readonly startedAt: number;

  private async timed<T>(phase: ReconcilePhase, f: () => Promise<T>): Promise<T> {
    const observe = this.opts.observer?.phase;
    if (!observe) return f();
    const t = performance.now();
    try {
      return await f();
    } finally {
      observe.call(this.opts.observer, phase, performance.now() - t);
    }
  }

  private now(): number {
    return (this.opts.now ?? Date.now)();
  }

  /** Reconciles one service: a batch of one. */
  async reconcile(serviceId: string, cause: string): Promise<ReconcileOutcome> {
    return (await this.reconcileBatch([{ serviceId, cause }])).get(serviceId)!;
  }

  /** Reconciles several services with one read, one transaction and one command send; an outcome per service. */
  async reconcileBatch(items: readonly ReconcileItem[]): Promise<Map<string, ReconcileOutcome>> {
    const out = new Map<string, ReconcileOutcome>();
    await this.run(items, 0, out);
    return out;
  }

  private async run(items: readonly ReconcileItem[], conflicts: number, out: Map<string, ReconcileOutcome>): Promise<void> {
    const states = await this.timed('load', () => this.store.loadServiceStates(items.map((i) => i.serviceId)));
    const fleet = this.fleetViews(await this.timed('nodes', () => this.nodes.snapshot()));
    const now = this.now();
    const planned: { item: ReconcileItem; state: ServiceState; p: Plan; write: PlanWrite | null }[] = [];
    const releases: (() => void)[] = [];
    const allocations: { nodeIds: string[]; res: Resources }[] = [];
    try {
      for (const item of items) {
        const state = states.get(item.serviceId);
        if (!state) {
          this.routes.markDirty(item.serviceId);
          out.set(item.serviceId, { conflicts, plan: null });
          continue;
        }
        const x = this.planFor(state, fleet, now);
        planned.push({ item, state, p: x.p, write: x.write });
        if (x.targets.length > 0) {
          // Later plans of the batch (and concurrent reconciles) see these placements.
          releases.push(this.nodes.reserve(x.targets, x.res));
          allocations.push({ nodeIds: x.targets, res: x.res });
          for (const id of x.targets) fleet.add(id, x.res);
        }
      }
      const writes = planned.flatMap((x) => (x.write ? [x.write] : []));
      try {
        if (writes.length > 0) await this.timed('commit', () => this.store.commitPlans(writes));
      } catch (e) {
        const maxConflicts = this.opts.maxConflicts ?? 8;
        if (!(e instanceof StalePlanError) || (items.length === 1 && conflicts >= maxConflicts)) throw e;
        this.log.debug({ services: writes.length, err: e.message }, items.length === 1 ? 'plan went stale; re-planning' : 'batch went stale; re-planning its services one by one');
        this.nodes.invalidate();
        this.opts.observer?.conflict?.();
        for (const r of releases.splice(0)) r();
        if (items.length === 1) return await this.run(items, conflicts + 1, out);
        for (const x of planned) await this.run([x.item], 0, out);
        return;
      }
      if (allocations.length > 0) this.nodes.allocate(allocations);
    } finally {
      for (const r of releases) r();
    }
    await this.timed('send', () => this.sendCommands(planned.flatMap((x) => (x.write ? this.commandsFor(x.p, x.state) : []))));
    await this.timed('enqueue', () => Promise.all(planned.map((x) => this.afterCommit(x.p, x.state, now))));
    for (const x of planned) {
      if (x.write) this.logPlan(x.p, x.item.cause);
      const outcome = { conflicts, plan: x.p };
      this.routes.markDirty(x.item.serviceId, activates(x.p));
      out.set(x.item.serviceId, outcome);
      this.opts.observer?.reconciled?.(x.item.serviceId, outcome);
    }
  }

  /**
   * Node views of a snapshot: built once per load (labels/images parsed once), refreshed only for
   * the rows a committed placement replaced, plus plans in flight; `add` accounts the batch's own placements.
   */
  private viewCache: { loadId: number; rows: FleetSnapshot['nodes']; views: NodeView[]; index: Map<string, number>; byId: Map<string, NodeView> } | null = null;

  private fleetViews(snap: FleetSnapshot) {
    let c = this.viewCache;
    const rows = snap.nodes;
    if (!c || c.loadId !== snap.loadId) {
      const views = rows.map(toNodeView);
      c = { loadId: snap.loadId, rows, views, index: new Map(rows.map((r, i) => [r.id, i])), byId: new Map(views.map((v) => [v.id, v])) };
      this.viewCache = c;
    } else if (c.rows !== rows) {
      // Same load, newer copy: only rows whose allocation was accounted are new objects.
      const views = c.views.slice();
      for (let i = 0; i < rows.length; i++) if (rows[i] !== c.rows[i]) views[i] = { ...views[i]!, allocated: rows[i]!.allocated };
      c = { ...c, rows, views };
      this.viewCache = c;
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

  /** The pure plan for one service on the fleet's views, and what writing it takes. */
  private planFor(state: ServiceState, fleet: { views: NodeView[]; byId: ReadonlyMap<string, NodeView> }, now: number) {
    const nodeViews = fleet.views;
    const target = state.revisions.find((r) => r.id === state.service.activeRevisionId);
    const tPlan = performance.now();
    const p = plan(
      {
        service: toServiceView(state.service, target),
        revisions: state.revisions.map(toRevisionView),
        replicas: state.replicas.map(toReplicaView),
        nodes: nodeViews,
        nodeIndex: fleet.byId,
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
    this.opts.observer?.phase?.('plan', performance.now() - tPlan);
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
