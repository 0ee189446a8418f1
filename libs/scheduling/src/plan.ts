import { REPLICA_ALLOCATED, REPLICA_TERMINAL, type ReplicaState, type RevisionStatus } from '@berth/contracts';
import { Placer, type PlacementSampling } from './placement/placer';
import type { PlacementRequest } from './placement/plugin';
import { failFastVerdict } from './fail-fast';
import { rolloutBounds } from './rollout';
import type { NodeView, ReplicaView, RevisionView, ServiceView } from './types';

/**
 * The reconcile diff (Nomad's `Scheduler.Process`): from one read-only snapshot of a service's
 * desired state (service + revisions) and actual state (replicas + nodes) compute what to change.
 * Level-triggered and idempotent: running it again on the state it produced yields an empty plan.
 *
 * Model
 * - target revision = service.activeRevisionId (the API points it at a new revision to deploy).
 * - keepers = live replicas of the target on READY (not draining, not down) nodes, or PENDING.
 * - retiring = every other live replica: older revisions, and target replicas on DRAINING nodes.
 * - start new target replicas while keepers < desired, within desired + maxSurge in total
 *   (drain replacements do not use the surge budget: they replace one for one).
 * - stop retiring replicas that are not READY at once; stop READY ones only while the count of
 *   available replicas (READY for at least minReadyMs) stays ≥ desired - maxUnavailable (so with
 *   the default 0, capacity never drops).
 * - a ROLLING_OUT target that is not fully READY by its deadline, whose FAILED replicas reach
 *   `desired`, or whose started replicas all crash-loop or failed for good (`failFastVerdict`), is
 *   marked FAILED and the previously ACTIVE revision becomes the target again.
 */

export interface PlanOptions {
  now: number;
  /** Default rollout deadline (ms) when the revision does not carry its own. */
  rolloutDeadlineMs: number;
  /** Id for a replica the plan creates (injected: the plan is pure). */
  newId: () => string;
  /**
   * How long a replica must have been READY to count as available (Kubernetes' minReadySeconds):
   * a container that crashes right after start flickers READY and must not let old replicas go.
   */
  minReadyMs?: number;
  /**
   * Rollout deadlines count from no earlier than this (epoch ms): the scheduler passes its own start
   * time, so a rollout is not failed for the time the scheduler itself was down.
   */
  deadlineNotBefore?: number;
  /** Score a bounded, rotating window of feasible nodes per placement instead of all (see `PlacementSampling`); default: all. */
  sampling?: PlacementSampling;
}

export interface PlanInput {
  service: ServiceView;
  revisions: readonly RevisionView[];
  /** Live replicas of the service, plus FAILED ones of a rolling-out revision (they count towards failing it). */
  replicas: readonly ReplicaView[];
  nodes: readonly NodeView[];
  /**
   * The same nodes by id, if the caller already has such a map (only `name` and `status` are read
   * from it, so it may hold older copies with other allocations); built from `nodes` when absent.
   */
  nodeIndex?: ReadonlyMap<string, Pick<NodeView, 'name' | 'status'>>;
}

export interface PlannedCreate {
  replicaId: string;
  revisionId: string;
  /** null: unschedulable, created PENDING with `pendingReason`. */
  nodeId: string | null;
  pendingReason: string | null;
}
export interface PlannedPlace {
  replicaId: string;
  generation: number;
  nodeId: string;
}
export interface PlannedPending {
  replicaId: string;
  generation: number;
  reason: string;
}
export interface PlannedStop {
  replicaId: string;
  generation: number;
  from: ReplicaState;
  nodeId: string | null;
  reason: string;
}
export interface PlannedLost {
  replicaId: string;
  generation: number;
  from: ReplicaState;
  nodeId: string | null;
  reason: string;
}
export interface PlannedRevisionChange {
  revisionId: string;
  from: RevisionStatus;
  to: RevisionStatus;
  reason: string | null;
}
export interface PlannedEvent {
  type: string;
  level: 'INFO' | 'WARN' | 'ERROR';
  message: string;
  revisionId?: string;
  replicaId?: string;
  nodeId?: string;
  data?: Record<string, unknown>;
}

export interface Plan {
  serviceId: string;
  create: PlannedCreate[];
  place: PlannedPlace[];
  pending: PlannedPending[];
  stop: PlannedStop[];
  lost: PlannedLost[];
  revisions: PlannedRevisionChange[];
  /** Set when the plan moves the service to another revision (auto-rollback); undefined = unchanged. */
  activeRevisionId?: string | null;
  events: PlannedEvent[];
  /** The rollout is waiting on something time-based: reconcile again at this time (epoch ms). */
  recheckAt: number | null;
}

export function isEmptyPlan(p: Plan): boolean {
  return (
    p.create.length + p.place.length + p.pending.length + p.stop.length + p.lost.length + p.revisions.length === 0 &&
    p.activeRevisionId === undefined
  );
}

const isLive = (s: ReplicaState) => !REPLICA_TERMINAL.includes(s) && s !== 'STOPPING';
const byAge = (a: ReplicaView, b: ReplicaView) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : 1);
/** Which replicas to give up first: unplaced, then not ready, then ready; newest first. */
const stopPreference = (a: ReplicaView, b: ReplicaView) => rank(a) - rank(b) || -byAge(a, b);
const rank = (r: ReplicaView) => (r.state === 'PENDING' ? 0 : r.state === 'READY' ? 2 : 1);

export function plan(input: PlanInput, opts: PlanOptions): Plan {
  const { service, nodes } = input;
  const out: Plan = {
    serviceId: service.id,
    create: [],
    place: [],
    pending: [],
    stop: [],
    lost: [],
    revisions: [],
    events: [],
    recheckAt: null,
  };
  const nodeById: ReadonlyMap<string, Pick<NodeView, 'name' | 'status'>> = input.nodeIndex ?? new Map(nodes.map((n) => [n.id, n]));
  const revById = new Map(input.revisions.map((r) => [r.id, r]));
  const stopping = new Set<string>();
  const stop = (r: ReplicaView, reason: string) => {
    stopping.add(r.id);
    out.stop.push({ replicaId: r.id, generation: r.generation, from: r.state, nodeId: r.nodeId, reason });
  };

  // 1. Replicas on nodes that are gone or DOWN are LOST; replacements follow below.
  const live: ReplicaView[] = [];
  const completed: ReplicaView[] = [];
  for (const r of input.replicas) {
    if (r.completed && (r.state === 'STOPPED' || r.state === 'FAILED')) completed.push(r);
    if (r.state === 'FAILED' || !isLive(r.state)) continue;
    if (REPLICA_ALLOCATED.includes(r.state)) {
      const node = r.nodeId ? nodeById.get(r.nodeId) : undefined;
      if (!node || node.status === 'DOWN') {
        const reason = node ? `node ${node.name} is down` : 'node no longer registered';
        out.lost.push({ replicaId: r.id, generation: r.generation, from: r.state, nodeId: r.nodeId, reason });
        out.events.push({
          type: 'replica.lost',
          level: 'WARN',
          message: `replica ${r.id} lost: ${reason}`,
          replicaId: r.id,
          nodeId: r.nodeId ?? undefined,
          revisionId: r.revisionId,
        });
        continue;
      }
    }
    live.push(r);
  }

  // 2. Deleted service, or nothing to run: stop everything.
  let target = service.deleted || !service.activeRevisionId ? undefined : revById.get(service.activeRevisionId);
  if (!target) {
    const why = service.deleted ? 'service deleted' : 'service has no active revision';
    for (const r of live.sort(byAge)) stop(r, why);
    return out;
  }
  const desired = Math.max(0, service.desiredReplicas);

  // 3. Revision bookkeeping: abandoned rollouts are superseded; a fresh target starts rolling out.
  const setStatus = (rev: RevisionView, to: RevisionStatus, reason: string | null) => {
    out.revisions.push({ revisionId: rev.id, from: rev.status, to, reason });
  };
  if (target.status === 'PENDING' || target.status === 'SUPERSEDED') {
    setStatus(target, 'ROLLING_OUT', null);
    target = { ...target, status: 'ROLLING_OUT', rolloutStartedAt: opts.now };
    out.events.push({
      type: 'revision.rollout_started',
      level: 'INFO',
      message: `rolling out revision ${target.number} to ${desired} replicas`,
      revisionId: target.id,
    });
  }

  // 4. Failure detection: deadline passed, or as many FAILED replicas as wanted.
  if (target.status === 'ROLLING_OUT') {
    const failure = rolloutFailure(target, input.replicas, live, desired, opts);
    if (failure) {
      const previous = input.revisions
        .filter((r) => r.id !== target!.id && r.status === 'ACTIVE')
        .sort((a, b) => b.number - a.number)[0];
      setStatus(target, 'FAILED', failure);
      out.events.push({
        type: 'revision.failed',
        level: 'ERROR',
        message: `revision ${target.number} failed: ${failure}`,
        revisionId: target.id,
      });
      if (previous) {
        out.activeRevisionId = previous.id;
        out.events.push({
          type: 'service.rolled_back',
          level: 'WARN',
          message: `rolled back to revision ${previous.number} after revision ${target.number} failed`,
          revisionId: previous.id,
          data: { failedRevisionId: target.id },
        });
        target = previous;
      } else {
        out.activeRevisionId = null;
        out.events.push({
          type: 'service.rollout_abandoned',
          level: 'ERROR',
          message: `revision ${target.number} failed and there is no earlier revision to restore`,
          revisionId: target.id,
        });
        for (const r of live.sort(byAge)) stop(r, `revision ${target.number} failed`);
        return out;
      }
    } else if (target.rolloutStartedAt !== null) {
      out.recheckAt = rolloutClock(target, opts) + deadlineOf(target, opts) + 1;
    }
  }
  for (const rev of input.revisions) {
    if (rev.id === target.id) continue;
    if ((rev.status === 'PENDING' || rev.status === 'ROLLING_OUT') && !out.revisions.some((c) => c.revisionId === rev.id)) {
      setStatus(rev, 'SUPERSEDED', `replaced by revision ${target.number}`);
    }
  }

  // 5. Partition live replicas. Under `no` / `on-failure` a replica that its policy left stopped
  //    keeps its slot (Docker's exited container): it is neither replaced nor counted as missing.
  const onUsableNode = (r: ReplicaView) => r.nodeId === null || nodeById.get(r.nodeId)?.status === 'READY';
  const settled = (target.restartPolicy ?? 'always') === 'always' ? [] : completed.filter((r) => r.revisionId === target!.id);
  const settledOk = settled.filter((r) => r.state === 'STOPPED').length;
  const keepers = live.filter((r) => r.revisionId === target!.id && onUsableNode(r));
  const retiringOld = live.filter((r) => r.revisionId !== target!.id);
  const retiringDrain = live.filter((r) => r.revisionId === target!.id && !onUsableNode(r));
  const bounds = rolloutBounds(desired, service.maxSurge, service.maxUnavailable);
  const minReady = target.minReadyMs ?? opts.minReadyMs ?? 0;
  let soonest: number | null = null;
  const available = (r: ReplicaView) => {
    if (r.state !== 'READY') return false;
    if (minReady <= 0 || r.readyAt == null) return true;
    const at = r.readyAt + minReady;
    if (opts.now >= at) return true;
    soonest = soonest === null ? at : Math.min(soonest, at);
    return false;
  };

  // 6. Scale down: too many keepers.
  let kept = keepers;
  const room = Math.max(0, desired - settled.length);
  if (keepers.length > room) {
    const extra = [...keepers].sort(stopPreference).slice(0, keepers.length - room);
    for (const r of extra) stop(r, `scaled down to ${desired}`);
    kept = keepers.filter((r) => !stopping.has(r.id));
  }

  // 7. Place or create target replicas.
  const req: PlacementRequest = {
    serviceId: service.id,
    resources: service.resources,
    constraints: service.constraints,
    strategy: service.placement,
    imageDigest: target.imageDigest,
  };
  const placer = new Placer(
    nodes,
    live.filter((r) => !stopping.has(r.id) && r.nodeId).map((r) => r.nodeId),
    undefined,
    undefined,
    opts.sampling,
  );
  for (const r of kept.filter((k) => k.state === 'PENDING').sort(byAge)) {
    const res = placer.place(req);
    if (res.ok) out.place.push({ replicaId: r.id, generation: r.generation, nodeId: res.nodeId });
    else if (res.reason !== r.pendingReason) out.pending.push({ replicaId: r.id, generation: r.generation, reason: res.reason });
  }
  // Retiring replicas that are not available go at once (they serve nothing), so they free surge room.
  const retiring = [...retiringOld, ...retiringDrain];
  const stable = (r: ReplicaView) => r.state === 'READY' && (minReady <= 0 || r.readyAt == null || opts.now >= r.readyAt + minReady);
  for (const r of retiring.filter((x) => !stable(x)).sort(byAge)) stop(r, retireReason(r, target, revById, nodeById));
  const oldLeft = retiringOld.filter((r) => !stopping.has(r.id)).length;
  const surgeRoom = desired + bounds.surge - kept.length - settled.length - oldLeft;
  const toStart = Math.max(0, Math.min(room - kept.length, oldLeft > 0 ? surgeRoom : Infinity));
  for (let i = 0; i < toStart; i++) {
    const res = placer.place(req);
    out.create.push({
      replicaId: opts.newId(),
      revisionId: target.id,
      nodeId: res.ok ? res.nodeId : null,
      pendingReason: res.ok ? null : res.reason,
    });
  }
  const placedNow = out.create.filter((c) => c.nodeId).length + out.place.length;
  if (placedNow > 0) {
    const perNode: Record<string, number> = {};
    for (const c of [...out.create, ...out.place]) if (c.nodeId) perNode[nodeById.get(c.nodeId)!.name] = (perNode[nodeById.get(c.nodeId)!.name] ?? 0) + 1;
    out.events.push({
      type: 'replicas.placed',
      level: 'INFO',
      message: `placed ${placedNow} replica(s) of revision ${target.number}: ${Object.entries(perNode)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([n, c]) => `${n}×${c}`)
        .join(', ')}`,
      revisionId: target.id,
      data: { placements: [...out.create, ...out.place].filter((c) => c.nodeId).map((c) => ({ replicaId: c.replicaId, nodeId: c.nodeId })) },
    });
  }
  const unplaced = [...out.create.filter((c) => !c.nodeId).map((c) => c.pendingReason!), ...out.pending.map((p) => p.reason)];
  if (unplaced.length > 0) {
    out.events.push({
      type: 'replicas.unschedulable',
      level: 'WARN',
      message: `${unplaced.length} replica(s) of revision ${target.number} pending: ${unplaced[0]}`,
      revisionId: target.id,
    });
  }

  // 8. Retire READY ones only while enough stay available (a replica that finished cleanly counts: it did its job).
  const readyKept = kept.filter(available).length + settledOk;
  const readyRetiring = retiring.filter((r) => r.state === 'READY' && !stopping.has(r.id));
  let budget = readyKept + readyRetiring.length - bounds.minAvailable;
  // Old revisions first (oldest first), then drained replicas.
  const readyOrder = [...readyRetiring].sort(
    (a, b) => (revById.get(a.revisionId)?.number ?? 0) - (revById.get(b.revisionId)?.number ?? 0) || byAge(a, b),
  );
  for (const r of readyOrder) {
    if (budget <= 0) break;
    stop(r, retireReason(r, target, revById, nodeById));
    budget--;
  }
  if (out.stop.length > 0 && retiring.length > 0) {
    const retired = out.stop.filter((s) => retiring.some((r) => r.id === s.replicaId)).length;
    if (retired > 0)
      out.events.push({
        type: 'rollout.step',
        level: 'INFO',
        message: `stopping ${retired} replica(s) replaced by revision ${target.number} (${readyKept}/${desired} ready)`,
        revisionId: target.id,
      });
  }

  const minReadyRecheck: number | null = soonest;
  if (minReadyRecheck !== null) out.recheckAt = out.recheckAt === null ? minReadyRecheck : Math.min(out.recheckAt, minReadyRecheck);

  // 9. A rolling-out target with every wanted replica READY and nothing left to retire is ACTIVE.
  const retiringLeft = retiring.filter((r) => !stopping.has(r.id)).length;
  if (target.status === 'ROLLING_OUT' && readyKept >= desired && retiringLeft === 0 && out.create.length === 0) {
    setStatus(target, 'ACTIVE', null);
    out.recheckAt = minReadyRecheck;
    for (const rev of input.revisions) {
      if (rev.id !== target.id && rev.status === 'ACTIVE') setStatus(rev, 'SUPERSEDED', `replaced by revision ${target.number}`);
    }
    out.events.push({
      type: 'revision.active',
      level: 'INFO',
      message: `revision ${target.number} is active with ${readyKept} ready replica(s)`,
      revisionId: target.id,
    });
  }
  return out;
}

function rolloutClock(rev: RevisionView, opts: PlanOptions): number {
  return Math.max(rev.rolloutStartedAt ?? opts.now, opts.deadlineNotBefore ?? -Infinity);
}

function deadlineOf(rev: RevisionView, opts: PlanOptions): number {
  return rev.rolloutDeadlineMs && rev.rolloutDeadlineMs > 0 ? rev.rolloutDeadlineMs : opts.rolloutDeadlineMs;
}

/** Why a rolling-out revision has failed, or null while it still may succeed. */
function rolloutFailure(
  target: RevisionView,
  all: readonly ReplicaView[],
  live: readonly ReplicaView[],
  desired: number,
  opts: PlanOptions,
): string | null {
  const failed = all.filter((r) => r.revisionId === target.id && r.state === 'FAILED');
  if (desired > 0 && failed.length >= desired) {
    const why = failed.map((r) => r.lastExitReason).find(Boolean);
    return `${failed.length} replica(s) failed${why ? `: ${why}` : ''}`;
  }
  // Fail fast: every started replica crash-loops or failed for good — waiting for the deadline
  // cannot help (slow starters, which have not crashed, still get the whole deadline).
  if (desired > 0) {
    const verdict = failFastVerdict(all.filter((r) => r.revisionId === target.id));
    if (verdict) return verdict.reason;
  }
  if (target.rolloutStartedAt === null) return null;
  const deadline = deadlineOf(target, opts);
  if (opts.now - rolloutClock(target, opts) <= deadline) return null;
  const mine = live.filter((r) => r.revisionId === target.id);
  const ready = mine.filter((r) => r.state === 'READY').length;
  if (ready >= desired) return null;
  const counts: Record<string, number> = {};
  for (const r of mine) if (r.state !== 'READY') counts[r.state] = (counts[r.state] ?? 0) + 1;
  const states = Object.entries(counts)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([s, n]) => `${n} ${s}`)
    .join(', ');
  const why = [...mine.map((r) => r.lastExitReason ?? r.pendingReason), ...failed.map((r) => r.lastExitReason)].find(Boolean);
  return `${ready}/${desired} replicas ready after ${Math.round(deadline / 1000)}s${states ? ` (${states})` : ''}${why ? `: ${why}` : ''}`;
}

function retireReason(
  r: ReplicaView,
  target: RevisionView,
  revs: Map<string, RevisionView>,
  nodes: ReadonlyMap<string, Pick<NodeView, 'name' | 'status'>>,
): string {
  if (r.revisionId !== target.id) return `replaced by revision ${target.number} (was revision ${revs.get(r.revisionId)?.number ?? '?'})`;
  return `node ${r.nodeId ? (nodes.get(r.nodeId)?.name ?? r.nodeId) : '?'} is draining`;
}
