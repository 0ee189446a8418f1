import { parseRevisionConfig, type ReplicaSpec, type RevisionConfig } from '@berth/contracts';
import type { NodeView, ReplicaView, RevisionView, ServiceView } from '@berth/scheduling';
import type { NodeWithAllocation, RevisionRow, ServiceState } from '@berth/db';

/**
 * Translation between database rows and the pure scheduler's views, and the ReplicaSpec an agent
 * receives. What runs comes from the revision's config, parsed against its contract
 * (`RevisionConfigSchema`): nothing here guesses a field name or falls back to the service's
 * columns (which may already hold the next deploy's settings). A config that does not parse throws
 * a ConfigContractError naming the fields; the reconcile fails loudly rather than run a guess.
 */
type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const strMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(obj(v)).filter(([, x]) => typeof x === 'string') as [string, string][]);

/** Revisions are immutable: each config is parsed once per process (bounded). */
const parsed = new Map<string, RevisionConfig>();
const PARSED_MAX = 20_000;

export function revisionConfig(r: Pick<RevisionRow, 'id' | 'number' | 'config'>): RevisionConfig {
  const hit = parsed.get(r.id);
  if (hit) return hit;
  const c = parseRevisionConfig(r.config, `revision ${r.number} (${r.id}) config`);
  if (parsed.size >= PARSED_MAX) parsed.delete(parsed.keys().next().value!);
  parsed.set(r.id, c);
  return c;
}

export function toServiceView(s: ServiceState['service'], target: RevisionRow | undefined): ServiceView {
  return {
    id: s.id,
    desiredReplicas: s.desiredReplicas,
    activeRevisionId: s.activeRevisionId,
    deleted: s.deletedAt !== null,
    maxSurge: s.maxSurge,
    maxUnavailable: s.maxUnavailable,
    placement: s.placement,
    constraints: strMap(s.constraints),
    resources: target ? revisionConfig(target).resources : { cpuMillis: s.cpuMillis, memoryMiB: s.memoryMiB, pids: s.pidsLimit },
  };
}

export function toRevisionView(r: RevisionRow): RevisionView {
  return {
    id: r.id,
    number: r.number,
    status: r.status,
    imageDigest: r.imageDigest,
    rolloutStartedAt: r.rolloutStartedAt ? r.rolloutStartedAt.getTime() : null,
    rolloutDeadlineMs: null,
    minReadyMs: null,
    restartPolicy: revisionConfig(r).restartPolicy.policy,
  };
}

export function toReplicaView(r: ServiceState['replicas'][number]): ReplicaView {
  return {
    id: r.id,
    revisionId: r.revisionId,
    nodeId: r.nodeId,
    state: r.state,
    generation: r.generation,
    createdAt: r.createdAt.getTime(),
    pendingReason: r.pendingReason,
    lastExitReason: r.lastExitReason,
    restartCount: r.restartCount,
    readyAt: r.readyAt ? r.readyAt.getTime() : null,
    completed: r.completedAt !== null,
  };
}

export function toNodeView(n: NodeWithAllocation): NodeView {
  return {
    id: n.id,
    name: n.name,
    status: n.status,
    labels: strMap(n.labels),
    capacity: { cpuMillis: n.cpuMillis, memoryMiB: n.memoryMiB, pids: n.pids },
    allocated: n.allocated,
    cachedImages: Array.isArray(n.cachedImages) ? (n.cachedImages as string[]) : [],
    schedulable: n.schedulable,
  };
}

export function replicaSpec(
  service: ServiceState['service'],
  revision: RevisionRow,
  replica: { id: string; generation: number },
): ReplicaSpec {
  const rc = revisionConfig(revision);
  return {
    replicaId: replica.id,
    serviceId: service.id,
    projectId: service.projectId,
    projectSlug: service.project.slug,
    serviceName: service.name,
    revisionId: revision.id,
    revisionNumber: revision.number,
    generation: replica.generation,
    image: {
      reference: revision.imageRef,
      digest: revision.imageDigest,
      registry: revision.imageVersion.image.registry,
      repository: revision.imageVersion.image.repository,
    },
    port: rc.port,
    env: rc.env,
    command: rc.command,
    resources: rc.resources,
    restart: rc.restartPolicy,
    healthCheck: rc.healthCheck,
  };
}
