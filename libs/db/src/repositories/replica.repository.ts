import { REPLICA_TERMINAL, REPLICA_TRANSITIONS, type ReplicaState } from '@berth/contracts';
import { PrismaService } from '../prisma.service';
import type { Prisma } from '../generated/prisma/client';

export interface ReplicaReport {
  replicaId: string;
  nodeId: string;
  generation: number;
  state: ReplicaState;
  at: Date;
  /** When the control plane learned of it; READY is timed from here (minimum-ready checks must not trust a report that sat in a queue). */
  receivedAt?: Date;
  address?: string | null;
  port?: number | null;
  exitCode?: number | null;
  reason?: string | null;
  restartCount?: number | null;
  /** The replica ended by itself and its restart policy keeps it stopped. */
  completed?: boolean;
}

export type ReportOutcome =
  | { applied: true; serviceId: string; to: ReplicaState }
  | { applied: false; why: 'unknown' | 'stale' | 'illegal' | 'same' };

/**
 * States from which `to` can be reached through legal transitions whose intermediate steps are live:
 * an agent may report READY while the database still says SCHEDULED when intermediate reports were
 * coalesced, and the path SCHEDULED → PULLING → STARTING → RUNNING → READY is legal step by step.
 */
export function reachableSources(to: ReplicaState): ReplicaState[] {
  const out = new Set<ReplicaState>();
  const states = Object.keys(REPLICA_TRANSITIONS) as ReplicaState[];
  for (const from of states) {
    if (from === to) continue;
    const seen = new Set<ReplicaState>([from]);
    const queue: ReplicaState[] = [from];
    while (queue.length) {
      const s = queue.shift()!;
      for (const next of REPLICA_TRANSITIONS[s]) {
        if (next === to) {
          out.add(from);
          queue.length = 0;
          break;
        }
        // Never walk through a terminal state, STOPPING (a stop was ordered) or LOST.
        if (seen.has(next) || REPLICA_TERMINAL.includes(next) || next === 'STOPPING' || next === 'PENDING') continue;
        seen.add(next);
        queue.push(next);
      }
    }
  }
  return [...out];
}
const SOURCES = Object.fromEntries((Object.keys(REPLICA_TRANSITIONS) as ReplicaState[]).map((s) => [s, reachableSources(s)])) as Record<
  ReplicaState,
  ReplicaState[]
>;

/** Replica writes driven by agent reports. */
export class ReplicaRepository {
  constructor(private readonly prisma: PrismaService) {}

  /**
   * Applies one agent report through the transition table: only when the report's generation equals
   * the replica's (a newer command makes it stale), the replica is on the reporting node, and the
   * state can legally move to the reported one. Reports do not bump the generation: the generation
   * counts commands, so every report about one command carries the same one.
   */
  async applyReport(r: ReplicaReport): Promise<ReportOutcome> {
    const db = this.prisma.client;
    const data: Prisma.ReplicaUncheckedUpdateManyInput = { state: r.state };
    if (r.restartCount != null) data.restartCount = r.restartCount;
    if (r.address !== undefined && r.address !== null) data.address = r.address;
    if (r.port != null) data.port = r.port;
    if (r.state === 'RUNNING') data.startedAt = r.at;
    if (r.state === 'READY') data.readyAt = r.receivedAt ?? r.at;
    if (r.state === 'STOPPED') data.stoppedAt = r.at;
    if (r.completed && (r.state === 'STOPPED' || r.state === 'FAILED')) data.completedAt = r.at;
    if (r.state === 'EXITED' || r.state === 'FAILED' || r.state === 'BACKOFF' || r.state === 'STOPPED') {
      if (r.exitCode !== undefined) data.lastExitCode = r.exitCode;
      if (r.reason) data.lastExitReason = r.reason;
    }
    const res = await db.replica.updateMany({
      where: { id: r.replicaId, nodeId: r.nodeId, generation: r.generation, state: { in: SOURCES[r.state] } },
      data,
    });
    if (res.count === 1) {
      // The row was in some source state; read back the service (and nothing else) for follow-ups.
      const row = await db.replica.findUnique({ where: { id: r.replicaId }, select: { serviceId: true } });
      return { applied: true, serviceId: row!.serviceId, to: r.state };
    }
    const cur = await db.replica.findUnique({ where: { id: r.replicaId }, select: { state: true, generation: true, nodeId: true } });
    if (!cur || cur.nodeId !== r.nodeId) return { applied: false, why: 'unknown' };
    if (cur.generation !== r.generation) return { applied: false, why: 'stale' };
    if (cur.state === r.state) return { applied: false, why: 'same' };
    return { applied: false, why: 'illegal' };
  }

  /** The replica's current state (for tests and status checks). */
  get(id: string) {
    return this.prisma.client.replica.findUnique({ where: { id } });
  }
}
