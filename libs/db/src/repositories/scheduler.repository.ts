import {
  NodeStatus as NS,
  REPLICA_ALLOCATED,
  REPLICA_TERMINAL,
  sourcesOf,
  REPLICA_TRANSITIONS,
  assertRevisionTransition,
  type ReplicaState,
  type RevisionStatus,
} from '@berth/contracts';
import { PrismaService } from '../prisma.service';
import type { EventLevel, Node, Prisma, Replica, Revision, Service } from '../generated/prisma/client';

/** The plan was built on state that changed before it could be written; re-read and plan again. */
export class StalePlanError extends Error {
  readonly code = 'STALE_PLAN';
  constructor(message: string) {
    super(message);
    this.name = 'StalePlanError';
  }
}

export type RevisionRow = Revision & { imageVersion: { image: { registry: string; repository: string } } };
export interface ServiceState {
  service: Service & { project: { slug: string } };
  revisions: RevisionRow[];
  replicas: Replica[];
}

export interface NodeWithAllocation extends Node {
  allocated: { cpuMillis: number; memoryMiB: number; pids: number };
}

export interface PlanEventWrite {
  type: string;
  level: EventLevel;
  message: string;
  revisionId?: string | null;
  replicaId?: string | null;
  nodeId?: string | null;
  data?: Record<string, unknown>;
}

/** A plan in database terms. Every write is guarded: a row that moved since it was read fails the whole plan. */
export interface PlanWrite {
  serviceId: string;
  projectId: string;
  /** Service.generation the plan was computed from. */
  expectedGeneration: number;
  now: Date;
  creates: { id: string; revisionId: string; nodeId: string | null; pendingReason: string | null; port: number | null }[];
  places: { id: string; generation: number; nodeId: string }[];
  pendingReasons: { id: string; generation: number; reason: string }[];
  stops: { id: string; generation: number; to: 'STOPPING' | 'STOPPED'; reason: string }[];
  lost: { id: string; generation: number; reason: string }[];
  revisions: { id: string; from: RevisionStatus; to: RevisionStatus; reason: string | null }[];
  activeRevisionId?: string | null;
  events: PlanEventWrite[];
}

const LIVE_STATES = (Object.keys(REPLICA_TRANSITIONS) as ReplicaState[]).filter((s) => !REPLICA_TERMINAL.includes(s));

/** Reads and writes the scheduler's view of a service (desired + actual state) in Postgres. */
export class SchedulerRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** The service, the revisions that matter (active, rolling, pending, or holding live replicas) and its live replicas. */
  async loadServiceState(serviceId: string): Promise<ServiceState | null> {
    const db = this.prisma.client;
    // Service and replicas in parallel (two pool connections): the plan is guarded by generations anyway.
    const [service, replicas] = await Promise.all([
      db.service.findUnique({ where: { id: serviceId }, include: { project: { select: { slug: true } } } }),
      // Raw: this runs on every reconcile and Prisma's compilation of the relation filter was a large
      // share of the scheduler's CPU. Same rows and order as the model query it replaced.
      db.$queryRaw<Replica[]>`
        SELECT r.* FROM "Replica" r
        WHERE r."serviceId" = ${serviceId}::uuid
          AND (r.state::text = ANY(${LIVE_STATES}::text[])
               OR (r.state = 'FAILED' AND EXISTS (SELECT 1 FROM "Revision" v WHERE v.id = r."revisionId" AND v.status = 'ROLLING_OUT'))
               -- replicas of the active revision that their restart policy left stopped keep their slot
               OR (r."completedAt" IS NOT NULL AND EXISTS (SELECT 1 FROM "Service" cs WHERE cs.id = r."serviceId" AND cs."activeRevisionId" = r."revisionId")))
        ORDER BY r."createdAt" ASC, r.id ASC`,
    ]);
    if (!service) return null;
    const revisionIds = new Set(replicas.map((r) => r.revisionId));
    if (service.activeRevisionId) revisionIds.add(service.activeRevisionId);
    const revisions = await db.revision.findMany({
      where: { serviceId, OR: [{ id: { in: [...revisionIds] } }, { status: { in: ['PENDING', 'ROLLING_OUT', 'ACTIVE'] } }] },
      include: { imageVersion: { select: { image: { select: { registry: true, repository: true } } } } },
      orderBy: { number: 'asc' },
    });
    return { service, revisions, replicas };
  }

  /** Every node with the resources its allocated replicas hold (all services). */
  async nodeSnapshot(): Promise<NodeWithAllocation[]> {
    const db = this.prisma.client;
    const [nodes, alloc] = await Promise.all([
      db.node.findMany({ orderBy: [{ name: 'asc' }, { id: 'asc' }] }),
      db.$queryRaw<{ nodeId: string; cpu: number; mem: number; pids: number }[]>`
        SELECT r."nodeId" AS "nodeId", SUM(s."cpuMillis")::int AS cpu, SUM(s."memoryMiB")::int AS mem, SUM(s."pidsLimit")::int AS pids
        FROM "Replica" r JOIN "Service" s ON s.id = r."serviceId"
        WHERE r."nodeId" IS NOT NULL AND r.state::text = ANY(${[...REPLICA_ALLOCATED]}::text[])
        GROUP BY r."nodeId"`,
    ]);
    const byNode = new Map(alloc.map((a) => [a.nodeId, a]));
    return nodes.map((n) => {
      const a = byNode.get(n.id);
      return { ...n, allocated: { cpuMillis: a?.cpu ?? 0, memoryMiB: a?.mem ?? 0, pids: a?.pids ?? 0 } };
    });
  }

  /** Changes whenever a node is added, removed or changes status/capacity/labels (not on heartbeats). */
  async fleetVersion(): Promise<string> {
    const [row] = await this.prisma.client.$queryRaw<{ v: string }[]>`
      SELECT count(*)::text || '/' || COALESCE(max("updatedAt")::text, '') AS v FROM "Node"`;
    return row!.v;
  }

  /**
   * Writes a plan in one transaction. Fails with StalePlanError (and writes nothing) when the service's
   * generation moved, a replica or revision is no longer in the state/generation the plan saw, or a node
   * receiving replicas would be over capacity (another service took the room meanwhile).
   */
  async commitPlan(w: PlanWrite): Promise<void> {
    try {
      await this.commit(w);
    } catch (e) {
      // Two plans touching the same nodes can still deadlock on foreign-key share locks; Postgres
      // aborts one, which is just a stale plan: re-read and plan again.
      if (/40P01|deadlock detected|40001/.test(String((e as Error).message))) throw new StalePlanError(`concurrent plan: ${(e as Error).message.slice(-80)}`);
      throw e;
    }
  }

  private async commit(w: PlanWrite): Promise<void> {
    await this.prisma.client.$transaction(async (tx) => {
      // The hot writes (generation guard, new replicas, events) are single raw statements: Prisma's
      // client-side query compilation of createMany/updateMany cost more CPU than the round trips.
      const svc = {
        count: await tx.$executeRaw`
          UPDATE "Service" SET generation = generation + 1, "updatedAt" = now()
          WHERE id = ${w.serviceId}::uuid AND generation = ${w.expectedGeneration}`,
      };
      if (svc.count !== 1) throw new StalePlanError(`service ${w.serviceId} changed (generation ${w.expectedGeneration})`);
      const targets = [...new Set([...w.creates.map((c) => c.nodeId), ...w.places.map((p) => p.nodeId)].filter((n): n is string => !!n))].sort();

      for (const r of w.revisions) {
        assertRevisionTransition(r.from, r.to);
        const res = await tx.revision.updateMany({
          where: { id: r.id, status: r.from },
          data: {
            status: r.to,
            statusReason: r.reason,
            ...(r.to === 'ROLLING_OUT' ? { rolloutStartedAt: w.now } : {}),
            ...(r.to === 'ACTIVE' ? { activatedAt: w.now } : {}),
          },
        });
        if (res.count !== 1) throw new StalePlanError(`revision ${r.id} is no longer ${r.from}`);
      }
      if (w.activeRevisionId !== undefined) {
        await tx.service.update({ where: { id: w.serviceId }, data: { activeRevisionId: w.activeRevisionId } });
      }

      if (w.creates.length > 0) {
        const c = w.creates;
        // A new replica is born PENDING; placing it is the PENDING → SCHEDULED transition.
        await tx.$executeRaw`
          INSERT INTO "Replica" (id, "serviceId", "revisionId", "nodeId", state, generation, "pendingReason", port, "createdAt", "updatedAt")
          SELECT u.id, ${w.serviceId}::uuid, u.rev, u.node, u.state::"ReplicaState", 1, u.reason, u.port, now(), now()
          FROM unnest(
            ${c.map((x) => x.id)}::uuid[], ${c.map((x) => x.revisionId)}::uuid[], ${c.map((x) => x.nodeId)}::uuid[],
            ${c.map((x) => (x.nodeId ? 'SCHEDULED' : 'PENDING'))}::text[], ${c.map((x) => x.pendingReason)}::text[], ${c.map((x) => x.port)}::int[]
          ) AS u(id, rev, node, state, reason, port)`;
      }
      const guarded = async (id: string, generation: number, to: ReplicaState, data: Prisma.ReplicaUncheckedUpdateManyInput) => {
        const res = await tx.replica.updateMany({
          where: { id, generation, state: { in: sourcesOf(REPLICA_TRANSITIONS, to) } },
          data: { ...data, state: to, generation: { increment: 1 } },
        });
        if (res.count !== 1) throw new StalePlanError(`replica ${id} moved since generation ${generation}`);
      };
      for (const p of w.places) await guarded(p.id, p.generation, 'SCHEDULED', { nodeId: p.nodeId, pendingReason: null });
      for (const p of w.pendingReasons) {
        await tx.replica.updateMany({ where: { id: p.id, generation: p.generation, state: 'PENDING' }, data: { pendingReason: p.reason } });
      }
      for (const s of w.stops)
        await guarded(s.id, s.generation, s.to, { lastExitReason: s.reason, ...(s.to === 'STOPPED' ? { stoppedAt: w.now } : {}) });
      for (const l of w.lost) await guarded(l.id, l.generation, 'LOST', { lastExitReason: l.reason, stoppedAt: w.now });

      if (w.events.length > 0) {
        const e = w.events;
        await tx.$executeRaw`
          INSERT INTO "Event" ("projectId", "serviceId", "revisionId", "replicaId", "nodeId", type, level, message, data, actor)
          SELECT ${w.projectId}::uuid, ${w.serviceId}::uuid, u.rev, u.rep, u.node, u.type, u.level::"EventLevel", u.message, u.data, 'system'
          FROM unnest(
            ${e.map((x) => x.revisionId ?? null)}::uuid[], ${e.map((x) => x.replicaId ?? null)}::uuid[], ${e.map((x) => x.nodeId ?? null)}::uuid[],
            ${e.map((x) => x.type)}::text[], ${e.map((x) => x.level)}::text[], ${e.map((x) => x.message)}::text[],
            ${e.map((x) => JSON.stringify(x.data ?? {}))}::jsonb[]
          ) AS u(rev, rep, node, type, level, message, data)`;
      }
      // Lock the receiving nodes (in id order, so concurrent plans queue instead of deadlocking) only now,
      // right before the capacity check and the commit: the lock is held for two statements, not the
      // whole transaction. Inserting/updating replicas only takes FOR KEY SHARE on the node rows, which
      // does not conflict with FOR NO KEY UPDATE; a plan that waited here re-checks with the other
      // plan's committed rows visible (READ COMMITTED takes a fresh snapshot per statement).
      if (targets.length > 0) {
        await this.lockNodes(tx, targets);
        await this.verifyCapacity(tx, targets);
      }
    });
  }

  /** Locks the nodes in id order (FOR NO KEY UPDATE: placements on one node serialise) and checks they still take replicas. */
  private async lockNodes(tx: Prisma.TransactionClient, nodeIds: string[]): Promise<void> {
    const locked = await tx.$queryRaw<{ id: string; status: string }[]>`
      SELECT id, status::text AS status FROM "Node" WHERE id = ANY(${nodeIds}::uuid[]) ORDER BY id FOR NO KEY UPDATE`;
    for (const n of locked) if (n.status !== NS.READY) throw new StalePlanError(`node ${n.id} is ${n.status}`);
    if (locked.length !== nodeIds.length) throw new StalePlanError('a target node was removed');
  }

  /** With the nodes locked and the new replicas written: none may be over capacity. */
  private async verifyCapacity(tx: Prisma.TransactionClient, nodeIds: string[]): Promise<void> {
    const over = await tx.$queryRaw<{ id: string }[]>`
      SELECT n.id FROM "Node" n
      JOIN "Replica" r ON r."nodeId" = n.id AND r.state::text = ANY(${[...REPLICA_ALLOCATED]}::text[])
      JOIN "Service" s ON s.id = r."serviceId"
      WHERE n.id = ANY(${nodeIds}::uuid[])
      GROUP BY n.id, n."cpuMillis", n."memoryMiB", n.pids
      HAVING SUM(s."cpuMillis") > n."cpuMillis" OR SUM(s."memoryMiB") > n."memoryMiB" OR SUM(s."pidsLimit") > n.pids`;
    if (over.length > 0) throw new StalePlanError(`node ${over[0]!.id} would be over capacity`);
  }

  /** Services the periodic resync re-enqueues: not deleted, or deleted but still holding replicas. */
  async liveServiceIds(): Promise<string[]> {
    const rows = await this.prisma.client.$queryRaw<{ id: string }[]>`
      SELECT s.id FROM "Service" s WHERE s."deletedAt" IS NULL
      UNION
      SELECT DISTINCT r."serviceId" FROM "Replica" r WHERE r.state::text = ANY(${LIVE_STATES}::text[])`;
    return rows.map((r) => r.id);
  }

  /**
   * Image digests each node must keep through image GC: for every live (not deleted) service, the
   * images of its last `keepRevisions` revisions (by number) that had a replica on that node.
   * Every READY or DRAINING node is listed, with an empty list when it keeps nothing.
   */
  async imageKeepSets(keepRevisions: number): Promise<Map<string, string[]>> {
    const db = this.prisma.client;
    const nodes = await db.node.findMany({ where: { status: { in: ['READY', 'DRAINING'] } }, select: { id: true } });
    const rows = await db.$queryRaw<{ nodeId: string; digests: string[] }[]>`
      WITH lastk AS (
        SELECT v.id, v."imageDigest" FROM (
          SELECT v.id, v."imageDigest", row_number() OVER (PARTITION BY v."serviceId" ORDER BY v.number DESC) AS k
          FROM "Revision" v JOIN "Service" s ON s.id = v."serviceId" AND s."deletedAt" IS NULL
        ) v WHERE v.k <= ${keepRevisions}
      )
      SELECT r."nodeId"::text AS "nodeId", array_agg(DISTINCT l."imageDigest") AS digests
      FROM "Replica" r JOIN lastk l ON l.id = r."revisionId"
      WHERE r."nodeId" IS NOT NULL
      GROUP BY r."nodeId"`;
    const out = new Map<string, string[]>(nodes.map((n) => [n.id, []]));
    for (const r of rows) if (out.has(r.nodeId)) out.set(r.nodeId, [...r.digests].sort());
    return out;
  }

  /** Replicas whose command may have been lost (enqueued after a commit that a crash interrupted). */
  commandsToResend(serviceId: string, olderThan: Date) {
    return this.prisma.client.replica.findMany({
      where: { serviceId, state: { in: ['SCHEDULED', 'STOPPING'] }, updatedAt: { lt: olderThan }, nodeId: { not: null } },
    });
  }

  /** Ids of replicas that were created or placed by a plan, with what a start command needs. */
  findReplicas(ids: string[]) {
    return this.prisma.client.replica.findMany({ where: { id: { in: ids } } });
  }

  revisionsByIds(ids: string[]) {
    return this.prisma.client.revision.findMany({
      where: { id: { in: ids } },
      include: { imageVersion: { select: { image: { select: { registry: true, repository: true } } } } },
    });
  }

  /** What the routing table needs for each service: identity, scaling and READY endpoints. */
  async routeData(serviceIds: string[]) {
    const db = this.prisma.client;
    const services = await db.service.findMany({
      where: { id: { in: serviceIds } },
      select: {
        id: true,
        name: true,
        deletedAt: true,
        port: true,
        minScale: true,
        maxScale: true,
        targetConcurrency: true,
        desiredReplicas: true,
        project: { select: { slug: true } },
      },
    });
    const replicas = await db.replica.findMany({
      where: { serviceId: { in: serviceIds }, state: { in: ['READY', 'PENDING', 'SCHEDULED', 'PULLING', 'STARTING', 'RUNNING'] } },
      select: { id: true, serviceId: true, revisionId: true, address: true, port: true, state: true },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
    });
    return { services, replicas };
  }

  /** Appends events not tied to a plan (node down, agent events). */
  async appendEvents(events: (PlanEventWrite & { projectId?: string | null; serviceId?: string | null; actor: string })[]) {
    if (events.length === 0) return;
    // A service's event belongs to its project too (the api lists events by project).
    const missing = [...new Set(events.filter((e) => e.serviceId && !e.projectId).map((e) => e.serviceId!))];
    if (missing.length > 0) {
      const rows = await this.prisma.client.service.findMany({ where: { id: { in: missing } }, select: { id: true, projectId: true } });
      const projectOf = new Map(rows.map((r) => [r.id, r.projectId]));
      events = events.map((e) => (e.serviceId && !e.projectId ? { ...e, projectId: projectOf.get(e.serviceId) ?? null } : e));
    }
    await this.prisma.client.event.createMany({
      data: events.map((e) => ({
        projectId: e.projectId ?? null,
        serviceId: e.serviceId ?? null,
        revisionId: e.revisionId ?? null,
        replicaId: e.replicaId ?? null,
        nodeId: e.nodeId ?? null,
        type: e.type,
        level: e.level,
        message: e.message,
        data: (e.data ?? {}) as never,
        actor: e.actor,
      })),
    });
  }
}

