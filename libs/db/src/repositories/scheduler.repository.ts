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
import { Pool, types as pgTypes, type PoolClient } from 'pg';
import { PrismaService } from '../prisma.service';
import type { EventLevel, Node, Replica, Revision, Service } from '../generated/prisma/client';

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

type ServiceRow = ServiceState['service'];
type ReplicaRow = ServiceState['replicas'][number];

const LIVE_STATES = (Object.keys(REPLICA_TRANSITIONS) as ReplicaState[]).filter((s) => !REPLICA_TERMINAL.includes(s));
const SOURCES = {
  SCHEDULED: sourcesOf(REPLICA_TRANSITIONS, 'SCHEDULED'),
  STOPPING: sourcesOf(REPLICA_TRANSITIONS, 'STOPPING'),
  STOPPED: sourcesOf(REPLICA_TRANSITIONS, 'STOPPED'),
  LOST: sourcesOf(REPLICA_TRANSITIONS, 'LOST'),
} as const;

/** `sql\`... ${v} ...\`` → a parameterised query ($1, $2, ...) for node-postgres. */
function sql(strings: TemplateStringsArray, ...values: unknown[]): { text: string; values: unknown[] } {
  let text = strings[0]!;
  for (let i = 0; i < values.length; i++) text += `$${i + 1}${strings[i + 1]}`;
  return { text, values };
}

const TIMESTAMP_OID = 1114;

/**
 * A pg pool that reads rows the way Prisma does: `timestamp(3)` columns (no zone) hold UTC, so they
 * are parsed as UTC whatever the process's time zone (pg's default would take them as local time).
 * Write times are sent as ISO strings for the same reason.
 */
export function createReconcilePool(connectionString: string, max = 6): Pool {
  return new Pool({
    connectionString,
    max,
    types: {
      getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
        oid === TIMESTAMP_OID && format !== 'binary'
          ? (v: string) => new Date(`${v.replace(' ', 'T')}Z`)
          : pgTypes.getTypeParser(oid, format as 'text')) as typeof pgTypes.getTypeParser,
    },
  });
}

/**
 * Reads and writes the scheduler's view of services (desired + actual state) in Postgres: the one
 * implementation of the reconcile's reads and guarded writes. A reconcile of one service is a batch
 * of one. The hot path (`loadServiceStates`, `commitPlans`) is typed raw SQL on a small pg pool of
 * its own, a fixed number of statements per batch whatever its size (Prisma's query machinery was
 * the scheduler's largest CPU cost); the rest goes through Prisma.
 */
export class SchedulerRepository {
  constructor(
    private readonly prisma: PrismaService,
    /** From `createReconcilePool`; ended by `close`. */
    private readonly pool: Pool,
  ) {}

  private async rows<T>(c: Pool | PoolClient, q: { text: string; values: unknown[] }): Promise<T[]> {
    return (await c.query(q)).rows as T[];
  }

  /** Ends the reconcile pool. */
  async close(): Promise<void> {
    await this.pool.end();
  }

  /** One service's state (a batch of one); null when the service is gone. */
  async loadServiceState(serviceId: string): Promise<ServiceState | null> {
    return (await this.loadServiceStates([serviceId])).get(serviceId) ?? null;
  }

  /**
   * Per service id: the service, the revisions that matter (active, rolling, pending, or holding
   * live replicas) and its live replicas (absent = service gone). Three statements for any number
   * of services; rows as Prisma's model reads give them.
   */
  async loadServiceStates(serviceIds: readonly string[]): Promise<Map<string, ServiceState>> {
    const db = this.pool;
    const ids = [...serviceIds];
    const [services, replicas] = await Promise.all([
      this.rows<ServiceRow & { __slug: string }>(db, sql`
        SELECT s.*, p.slug AS "__slug" FROM "Service" s JOIN "Project" p ON p.id = s."projectId"
        WHERE s.id = ANY(${ids}::uuid[])`),
      this.rows<ReplicaRow>(db, sql`
        SELECT r.* FROM "Replica" r
        WHERE r."serviceId" = ANY(${ids}::uuid[])
          AND (r.state::text = ANY(${LIVE_STATES}::text[])
               OR (r.state = 'FAILED' AND EXISTS (SELECT 1 FROM "Revision" v WHERE v.id = r."revisionId" AND v.status = 'ROLLING_OUT'))
               -- replicas of the active revision that their restart policy left stopped keep their slot
               OR (r."completedAt" IS NOT NULL AND EXISTS (SELECT 1 FROM "Service" cs WHERE cs.id = r."serviceId" AND cs."activeRevisionId" = r."revisionId")))
        ORDER BY r."createdAt" ASC, r.id ASC`),
    ]);
    const out = new Map<string, ServiceState>();
    if (services.length === 0) return out;
    const revisionIds = new Set(replicas.map((r) => r.revisionId));
    for (const s of services) if (s.activeRevisionId) revisionIds.add(s.activeRevisionId);
    const revisions = await this.rows<RevisionRow & { __registry: string; __repository: string }>(db, sql`
      SELECT v.*, i.registry AS "__registry", i.repository AS "__repository"
      FROM "Revision" v JOIN "ImageVersion" iv ON iv.id = v."imageVersionId" JOIN "Image" i ON i.id = iv."imageId"
      WHERE v."serviceId" = ANY(${services.map((s) => s.id)}::uuid[])
        AND (v.id = ANY(${[...revisionIds]}::uuid[]) OR v.status IN ('PENDING', 'ROLLING_OUT', 'ACTIVE'))
      ORDER BY v.number ASC`);
    for (const row of services) {
      const { __slug, ...service } = row;
      out.set(service.id, { service: { ...service, project: { slug: __slug } }, revisions: [], replicas: [] });
    }
    for (const r of replicas) out.get(r.serviceId)?.replicas.push(r);
    for (const row of revisions) {
      const { __registry, __repository, ...rev } = row;
      out.get(rev.serviceId)?.revisions.push({ ...rev, imageVersion: { image: { registry: __registry, repository: __repository } } });
    }
    return out;
  }

  /** Writes one plan (a batch of one). */
  commitPlan(w: PlanWrite): Promise<void> {
    return this.commitPlans([w]);
  }

  /**
   * Writes every plan of the batch in one transaction, or nothing. Fails with StalePlanError when a
   * service's generation moved, a replica or revision is no longer in the state/generation the plan
   * saw, a receiving node is no longer READY, or it would be over capacity (another plan took the
   * room meanwhile). Two plans touching the same nodes can still deadlock on foreign-key share
   * locks; Postgres aborts one, which is just a stale plan: re-read and plan again.
   */
  async commitPlans(writes: readonly PlanWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await this.commitIn(client, writes);
      await client.query('COMMIT');
    } catch (e) {
      await client.query('ROLLBACK').catch((err: Error) => (broken = err));
      const code = (e as { code?: string }).code;
      if (code === '40P01' || code === '40001' || /deadlock detected/.test(String((e as Error).message)))
        throw new StalePlanError(`concurrent plan: ${(e as Error).message.slice(-80)}`);
      throw e;
    } finally {
      client.release(broken);
    }
  }

  private async commitIn(tx: PoolClient, writes: readonly PlanWrite[]): Promise<void> {
    // ISO text: stored as the UTC wall time by the ::timestamp casts below (as Prisma stores DateTime).
    const now = writes[0]!.now.toISOString();
    // 1. Generation guard of every service (then +1), in id order so two batches cannot deadlock here.
    const guards = [...writes].sort((a, b) => (a.serviceId < b.serviceId ? -1 : 1));
    const bumped = await this.rows<{ id: string }>(tx, sql`
      UPDATE "Service" s SET generation = s.generation + 1, "updatedAt" = now()
      FROM unnest(${guards.map((w) => w.serviceId)}::uuid[], ${guards.map((w) => w.expectedGeneration)}::int[]) AS u(id, g)
      WHERE s.id = u.id AND s.generation = u.g
      RETURNING s.id`);
    if (bumped.length !== writes.length)
      throw new StalePlanError(
        writes.length === 1
          ? `service ${writes[0]!.serviceId} changed (generation ${writes[0]!.expectedGeneration})`
          : `${writes.length - bumped.length} service(s) of the batch changed`,
      );

    // 2. Revision transitions `where status = from` (one statement when no revision moves twice).
    const revs = writes.flatMap((w) => w.revisions);
    for (const r of revs) assertRevisionTransition(r.from, r.to);
    const revisionRounds = new Set(revs.map((r) => r.id)).size === revs.length ? [revs] : revs.map((r) => [r]);
    for (const round of revisionRounds) {
      if (round.length === 0) continue;
      const moved = await this.rows<{ id: string }>(tx, sql`
        UPDATE "Revision" v SET status = u."to"::"RevisionStatus", "statusReason" = u.reason,
          "rolloutStartedAt" = CASE WHEN u."to" = 'ROLLING_OUT' THEN ${now}::timestamp ELSE v."rolloutStartedAt" END,
          "activatedAt" = CASE WHEN u."to" = 'ACTIVE' THEN ${now}::timestamp ELSE v."activatedAt" END
        FROM unnest(${round.map((r) => r.id)}::uuid[], ${round.map((r) => r.from)}::text[], ${round.map((r) => r.to)}::text[], ${round.map((r) => r.reason)}::text[])
          AS u(id, "from", "to", reason)
        WHERE v.id = u.id AND v.status::text = u."from"
        RETURNING v.id`);
      if (moved.length !== round.length) throw new StalePlanError('a revision changed status meanwhile');
    }
    for (const w of writes) {
      if (w.activeRevisionId === undefined) continue;
      await tx.query(sql`UPDATE "Service" SET "activeRevisionId" = ${w.activeRevisionId}::uuid, "updatedAt" = now() WHERE id = ${w.serviceId}::uuid`);
    }

    // 3. New replicas of every service in one INSERT (born PENDING; placing is PENDING → SCHEDULED).
    const creates = writes.flatMap((w) => w.creates.map((c) => ({ ...c, serviceId: w.serviceId })));
    if (creates.length > 0) {
      const c = creates;
      await tx.query(sql`
        INSERT INTO "Replica" (id, "serviceId", "revisionId", "nodeId", state, generation, "pendingReason", port, "createdAt", "updatedAt")
        SELECT u.id, u.svc, u.rev, u.node, u.state::"ReplicaState", 1, u.reason, u.port, now(), now()
        FROM unnest(
          ${c.map((x) => x.id)}::uuid[], ${c.map((x) => x.serviceId)}::uuid[], ${c.map((x) => x.revisionId)}::uuid[], ${c.map((x) => x.nodeId)}::uuid[],
          ${c.map((x) => (x.nodeId ? 'SCHEDULED' : 'PENDING'))}::text[], ${c.map((x) => x.pendingReason)}::text[], ${c.map((x) => x.port)}::int[]
        ) AS u(id, svc, rev, node, state, reason, port)`);
    }

    // 4. Guarded replica transitions (place, stop, lost): `where id, generation = read, state in sourcesOf(to)`, generation + 1.
    type Move = { id: string; generation: number; to: keyof typeof SOURCES; nodeId: string | null; reason: string | null; stoppedAt: boolean };
    const moves: Move[] = writes.flatMap((w) => [
      ...w.places.map((p): Move => ({ id: p.id, generation: p.generation, to: 'SCHEDULED', nodeId: p.nodeId, reason: null, stoppedAt: false })),
      ...w.stops.map((s): Move => ({ id: s.id, generation: s.generation, to: s.to, nodeId: null, reason: s.reason, stoppedAt: s.to === 'STOPPED' })),
      ...w.lost.map((l): Move => ({ id: l.id, generation: l.generation, to: 'LOST', nodeId: null, reason: l.reason, stoppedAt: true })),
    ]);
    if (moves.length > 0) {
      const m = moves;
      const moved = await this.rows<{ id: string }>(tx, sql`
        UPDATE "Replica" r SET
          state = u."to"::"ReplicaState",
          generation = r.generation + 1,
          "nodeId" = CASE WHEN u."to" = 'SCHEDULED' THEN u.node ELSE r."nodeId" END,
          "pendingReason" = CASE WHEN u."to" = 'SCHEDULED' THEN NULL ELSE r."pendingReason" END,
          "lastExitReason" = CASE WHEN u."to" = 'SCHEDULED' THEN r."lastExitReason" ELSE u.reason END,
          "stoppedAt" = CASE WHEN u.stopped THEN ${now}::timestamp ELSE r."stoppedAt" END,
          "updatedAt" = ${now}::timestamp
        FROM unnest(${m.map((x) => x.id)}::uuid[], ${m.map((x) => x.generation)}::int[], ${m.map((x) => x.to)}::text[],
                    ${m.map((x) => x.nodeId)}::uuid[], ${m.map((x) => x.reason)}::text[], ${m.map((x) => x.stoppedAt)}::bool[])
          AS u(id, gen, "to", node, reason, stopped)
        WHERE r.id = u.id AND r.generation = u.gen
          AND ((u."to" = 'SCHEDULED' AND r.state::text = ANY(${SOURCES.SCHEDULED}::text[]))
            OR (u."to" = 'STOPPING' AND r.state::text = ANY(${SOURCES.STOPPING}::text[]))
            OR (u."to" = 'STOPPED' AND r.state::text = ANY(${SOURCES.STOPPED}::text[]))
            OR (u."to" = 'LOST' AND r.state::text = ANY(${SOURCES.LOST}::text[])))
        RETURNING r.id`);
      if (moved.length !== moves.length) throw new StalePlanError(`${moves.length - moved.length} replica(s) moved since they were read`);
    }
    const pending = writes.flatMap((w) => w.pendingReasons);
    if (pending.length > 0) {
      await tx.query(sql`
        UPDATE "Replica" r SET "pendingReason" = u.reason, "updatedAt" = ${now}::timestamp
        FROM unnest(${pending.map((p) => p.id)}::uuid[], ${pending.map((p) => p.generation)}::int[], ${pending.map((p) => p.reason)}::text[]) AS u(id, gen, reason)
        WHERE r.id = u.id AND r.generation = u.gen AND r.state = 'PENDING'`);
    }

    // 5. Events of every plan in one INSERT.
    const events = writes.flatMap((w) => w.events.map((e) => ({ ...e, projectId: w.projectId, serviceId: w.serviceId })));
    if (events.length > 0) {
      const e = events;
      await tx.query(sql`
        INSERT INTO "Event" ("projectId", "serviceId", "revisionId", "replicaId", "nodeId", type, level, message, data, actor)
        SELECT u.proj, u.svc, u.rev, u.rep, u.node, u.type, u.level::"EventLevel", u.message, u.data, 'system'
        FROM unnest(
          ${e.map((x) => x.projectId)}::uuid[], ${e.map((x) => x.serviceId)}::uuid[],
          ${e.map((x) => x.revisionId ?? null)}::uuid[], ${e.map((x) => x.replicaId ?? null)}::uuid[], ${e.map((x) => x.nodeId ?? null)}::uuid[],
          ${e.map((x) => x.type)}::text[], ${e.map((x) => x.level)}::text[], ${e.map((x) => x.message)}::text[],
          ${e.map((x) => JSON.stringify(x.data ?? {}))}::jsonb[]
        ) AS u(proj, svc, rev, rep, node, type, level, message, data)`);
    }

    // 6. Lock the receiving nodes (in id order, so concurrent plans queue instead of deadlocking) only now,
    // right before the capacity check and the commit: the lock is held for two statements, not the
    // whole transaction. Inserting/updating replicas only takes FOR KEY SHARE on the node rows, which
    // does not conflict with FOR NO KEY UPDATE; a plan that waited here re-checks with the other
    // plan's committed rows visible (READ COMMITTED takes a fresh snapshot per statement).
    const targets = [
      ...new Set(writes.flatMap((w) => [...w.creates.map((c) => c.nodeId), ...w.places.map((p) => p.nodeId)]).filter((n): n is string => !!n)),
    ].sort();
    if (targets.length > 0) {
      const locked = await this.rows<{ id: string; status: string }>(tx, sql`
        SELECT id, status::text AS status FROM "Node" WHERE id = ANY(${targets}::uuid[]) ORDER BY id FOR NO KEY UPDATE`);
      for (const n of locked) if (n.status !== NS.READY) throw new StalePlanError(`node ${n.id} is ${n.status}`);
      if (locked.length !== targets.length) throw new StalePlanError('a target node was removed');
      const over = await this.rows<{ id: string }>(tx, sql`
        SELECT n.id FROM "Node" n
        JOIN "Replica" r ON r."nodeId" = n.id AND r.state::text = ANY(${[...REPLICA_ALLOCATED]}::text[])
        JOIN "Service" s ON s.id = r."serviceId"
        WHERE n.id = ANY(${targets}::uuid[])
        GROUP BY n.id, n."cpuMillis", n."memoryMiB", n.pids
        HAVING SUM(s."cpuMillis") > n."cpuMillis" OR SUM(s."memoryMiB") > n."memoryMiB" OR SUM(s."pidsLimit") > n.pids`);
      if (over.length > 0) throw new StalePlanError(`node ${over[0]!.id} would be over capacity`);
    }
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

  /**
   * What the pod network's sync needs: the nodes that have a pod subnet (hollow nodes have none and
   * are not read beyond an index lookup) and, when there is one, every replica that holds an address
   * and is not terminal, with its project.
   */
  async networkState(): Promise<{
    nodes: { id: string; name: string; status: NS; podCidr: string; underlay: string; wireguardPublicKey: string | null }[];
    replicas: { projectId: string; address: string }[];
  }> {
    const db = this.prisma.client;
    const rows = await db.node.findMany({
      where: { podCidr: { not: null } },
      select: { id: true, name: true, status: true, podCidr: true, address: true, underlayAddress: true, wireguardPublicKey: true },
      orderBy: [{ name: 'asc' }, { id: 'asc' }],
    });
    if (rows.length === 0) return { nodes: [], replicas: [] };
    const replicas = await db.$queryRaw<{ projectId: string; address: string }[]>`
      SELECT s."projectId"::text AS "projectId", r.address
      FROM "Replica" r JOIN "Service" s ON s.id = r."serviceId"
      WHERE r.address IS NOT NULL AND r.state::text = ANY(${LIVE_STATES}::text[])`;
    return {
      nodes: rows.map((n) => ({
        id: n.id,
        name: n.name,
        status: n.status,
        podCidr: n.podCidr!,
        underlay: n.underlayAddress ?? n.address,
        wireguardPublicKey: n.wireguardPublicKey,
      })),
      replicas,
    };
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

