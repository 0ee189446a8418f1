import { REPLICA_ALLOCATED, REPLICA_TRANSITIONS, sourcesOf, type ReplicaState } from '@berth/contracts';
import { PrismaService } from '../prisma.service';
import type { Node } from '../generated/prisma/client';
import type { NodeRegistration } from './node-admin.repository';


export interface Heartbeat {
  nodeId: string;
  at: Date;
  cachedImages: string[];
}

/** The scheduler's writes to nodes: heartbeats, liveness (DOWN / back to READY) and, for benches, registration. */
export class NodeRepository {
  constructor(private readonly prisma: PrismaService) {}

  get(id: string): Promise<Node | null> {
    return this.prisma.client.node.findUnique({ where: { id } });
  }

  /**
   * Registers a node by name (a returning node keeps its id and comes back READY). The api's
   * POST /v1/nodes/register is the normal path; this exists for hollow fleets in benches and tests.
   */
  async register(facts: NodeRegistration, now: Date): Promise<Node> {
    return this.prisma.client.node.upsert({
      where: { name: facts.name },
      create: { ...facts, status: 'READY', lastHeartbeatAt: now },
      update: { ...facts, lastHeartbeatAt: now },
    });
  }

  /**
   * Records a batch of heartbeats in one statement. Returns the nodes that were DOWN: the caller
   * brings them back (DOWN → READY) and tells their agents what to run.
   */
  async recordHeartbeats(beats: Heartbeat[]): Promise<{ id: string; name: string; status: string }[]> {
    if (beats.length === 0) return [];
    // Last beat per node wins.
    const latest = new Map<string, Heartbeat>();
    for (const b of beats) {
      const cur = latest.get(b.nodeId);
      if (!cur || cur.at <= b.at) latest.set(b.nodeId, b);
    }
    const list = [...latest.values()];
    return this.prisma.client.$queryRaw<{ id: string; name: string; status: string }[]>`
      WITH b AS (
        SELECT * FROM unnest(${list.map((b) => b.nodeId)}::uuid[], ${list.map((b) => b.at)}::timestamp[], ${list.map((b) =>
          JSON.stringify(b.cachedImages),
        )}::jsonb[]) AS t(id, at, images)
      ), old AS (
        -- Row locks in id order, the order plans lock nodes in: a heartbeat batch cannot deadlock with a plan.
        SELECT n.id, n.status FROM "Node" n WHERE n.id IN (SELECT id FROM b) ORDER BY n.id FOR NO KEY UPDATE
      )
      UPDATE "Node" n SET "lastHeartbeatAt" = GREATEST(COALESCE(n."lastHeartbeatAt", b.at), b.at), "cachedImages" = b.images
      FROM b, old WHERE n.id = b.id AND old.id = n.id
      RETURNING n.id, n.name, old.status::text AS status`;
  }

  /** Nodes READY or DRAINING whose last heartbeat is older than `cutoff` become DOWN; returns them. */
  async markSilentNodesDown(cutoff: Date): Promise<{ id: string; name: string }[]> {
    return this.prisma.client.$queryRaw<{ id: string; name: string }[]>`
      UPDATE "Node" SET status = 'DOWN', "updatedAt" = now()
      WHERE id IN (
        SELECT id FROM "Node"
        WHERE status IN ('READY', 'DRAINING') AND ("lastHeartbeatAt" IS NULL OR "lastHeartbeatAt" < ${cutoff})
        ORDER BY id FOR NO KEY UPDATE
      ) AND ("lastHeartbeatAt" IS NULL OR "lastHeartbeatAt" < ${cutoff})
      RETURNING id, name`;
  }

  /** DOWN → READY for a node heard from again. */
  async revive(id: string): Promise<boolean> {
    const r = await this.prisma.client.node.updateMany({ where: { id, status: 'DOWN' }, data: { status: 'READY' } });
    return r.count === 1;
  }

  /**
   * Replicas on the given nodes that still hold resources become LOST (their node is DOWN); returns
   * them so the caller can reconcile their services. Generation is bumped: late reports are stale.
   */
  async loseReplicasOn(nodeIds: string[], reason: string, now: Date) {
    if (nodeIds.length === 0) return [];
    const from = sourcesOf(REPLICA_TRANSITIONS, 'LOST' as ReplicaState).filter((s) => REPLICA_ALLOCATED.includes(s));
    return this.prisma.client.$queryRaw<{ id: string; serviceId: string; nodeId: string; revisionId: string }[]>`
      UPDATE "Replica" SET state = 'LOST', generation = generation + 1, "lastExitReason" = ${reason}, "stoppedAt" = ${now}, "updatedAt" = now()
      WHERE "nodeId" = ANY(${nodeIds}::uuid[]) AND state::text = ANY(${from}::text[])
      RETURNING id, "serviceId", "nodeId", "revisionId"`;
  }

  /** What a node should be running: its replicas that are placed and not being stopped. */
  async replicaIdsToRun(nodeId: string): Promise<string[]> {
    const rows = await this.prisma.client.replica.findMany({
      where: { nodeId, state: { in: ['SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'READY', 'EXITED', 'BACKOFF'] } },
      select: { id: true },
      orderBy: { id: 'asc' },
    });
    return rows.map((r) => r.id);
  }

  /** Services with PENDING replicas: new capacity may let them be placed. */
  async servicesWithPendingReplicas(): Promise<string[]> {
    const rows = await this.prisma.client.replica.findMany({ where: { state: 'PENDING' }, select: { serviceId: true }, distinct: ['serviceId'] });
    return rows.map((r) => r.serviceId);
  }

  /** Services with replicas on a node (in any live state). */
  async serviceIdsOnNode(nodeId: string): Promise<string[]> {
    const rows = await this.prisma.client.replica.findMany({
      where: { nodeId, state: { in: [...REPLICA_ALLOCATED] } },
      select: { serviceId: true },
      distinct: ['serviceId'],
    });
    return rows.map((r) => r.serviceId);
  }
}
