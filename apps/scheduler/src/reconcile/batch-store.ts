import {
  NodeStatus as NS,
  REPLICA_ALLOCATED,
  REPLICA_TERMINAL,
  REPLICA_TRANSITIONS,
  assertRevisionTransition,
  sourcesOf,
  type ReplicaState,
} from '@berth/contracts';
import { Pool, types as pgTypes, type PoolClient } from 'pg';
import { StalePlanError, type PlanWrite, type RevisionRow, type ServiceState } from '../db';

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
export function sql(strings: TemplateStringsArray, ...values: unknown[]): { text: string; values: unknown[] } {
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
export function createBatchPool(connectionString: string, max = 6): Pool {
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
 * The reconcile's reads and writes for a batch of services at once: the same rows and the same
 * guards as `SchedulerRepository.loadServiceState` / `commitPlan`, in a fixed number of statements
 * per batch instead of per service (plain node-postgres: Prisma's query machinery was the
 * scheduler's largest CPU cost). Any miss fails the whole batch with `StalePlanError`; the caller
 * then reconciles those services one at a time through the single-service path.
 */
export class BatchStore {
  constructor(private readonly pool: Pool) {}

  private async rows<T>(c: Pool | PoolClient, q: { text: string; values: unknown[] }): Promise<T[]> {
    return (await c.query(q)).rows as T[];
  }

  /** Per service id: the service, the revisions that matter and its live replicas (absent = service gone). */
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

  /** Writes every plan of the batch in one transaction, or nothing (StalePlanError) if any guard misses. */
  async commitPlans(writes: readonly PlanWrite[]): Promise<void> {
    if (writes.length === 0) return;
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await this.commit(client, writes);
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

  private async commit(tx: PoolClient, writes: readonly PlanWrite[]): Promise<void> {
    // ISO text: stored as the UTC wall time by the ::timestamp casts below (as Prisma stores DateTime).
    const now = writes[0]!.now.toISOString();
    // 1. Generation guard of every service (then +1), in id order so two batches cannot deadlock here.
    const guards = [...writes].sort((a, b) => (a.serviceId < b.serviceId ? -1 : 1));
    const bumped = await this.rows<{ id: string }>(tx, sql`
      UPDATE "Service" s SET generation = s.generation + 1, "updatedAt" = now()
      FROM unnest(${guards.map((w) => w.serviceId)}::uuid[], ${guards.map((w) => w.expectedGeneration)}::int[]) AS u(id, g)
      WHERE s.id = u.id AND s.generation = u.g
      RETURNING s.id`);
    if (bumped.length !== writes.length) throw new StalePlanError(`${writes.length - bumped.length} service(s) of the batch changed`);

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

    // 6. Receiving nodes: locked in id order right before the capacity check and COMMIT (as commitPlan).
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
}
