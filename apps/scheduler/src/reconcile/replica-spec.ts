import type { HealthCheckSpec, ReplicaSpec } from '@berth/contracts';
import type { NodeView, ReplicaView, RevisionView, ServiceView } from '@berth/scheduling';
import type { NodeWithAllocation, RevisionRow, ServiceState } from '../db';

/**
 * Translation between database rows and the pure scheduler's views, and the ReplicaSpec an agent
 * receives. A revision's config snapshot wins over the service's current columns for everything
 * that defines what runs (the service row may already hold the next deploy's settings).
 */
type Json = Record<string, unknown>;
const obj = (v: unknown): Json => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Json) : {});
const num = (v: unknown, d: number) => (typeof v === 'number' && Number.isFinite(v) ? v : d);
const strMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(obj(v)).filter(([, x]) => typeof x === 'string') as [string, string][]);

export interface RunConfig {
  port: number;
  env: Record<string, string>;
  command: string[] | null;
  resources: { cpuMillis: number; memoryMiB: number; pids: number };
  restart: ReplicaSpec['restart'];
  healthCheck: HealthCheckSpec | null;
  rolloutDeadlineMs: number | null;
  minReadyMs: number | null;
}

export function runConfig(service: ServiceState['service'], revision: RevisionRow | undefined): RunConfig {
  const c = obj(revision?.config);
  const res = obj(c.resources);
  const restart = obj(c.restart);
  const policy = String(restart.policy ?? c.restartPolicy ?? service.restartPolicy).toLowerCase().replace('_', '-');
  const command = Array.isArray(c.command) ? (c.command as string[]) : Array.isArray(service.command) ? (service.command as string[]) : null;
  const hc = c.healthCheck !== undefined ? c.healthCheck : service.healthCheck;
  return {
    port: num(c.port, service.port),
    env: { ...strMap(c.env !== undefined ? c.env : service.env) },
    command,
    resources: {
      cpuMillis: num(res.cpuMillis ?? c.cpuMillis, service.cpuMillis),
      memoryMiB: num(res.memoryMiB ?? c.memoryMiB, service.memoryMiB),
      pids: num(res.pids ?? c.pidsLimit, service.pidsLimit),
    },
    restart: {
      policy: policy === 'no' || policy === 'on-failure' ? policy : 'always',
      maxRetries: num(restart.maxRetries ?? c.restartMaxRetries, service.restartMaxRetries),
    },
    healthCheck: hc && typeof hc === 'object' ? (hc as HealthCheckSpec) : null,
    rolloutDeadlineMs: typeof c.rolloutDeadlineMs === 'number' ? c.rolloutDeadlineMs : null,
    minReadyMs: typeof c.minReadyMs === 'number' ? c.minReadyMs : null,
  };
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
    resources: runConfig(s, target).resources,
  };
}

export function toRevisionView(r: RevisionRow, service: ServiceState['service']): RevisionView {
  return {
    id: r.id,
    number: r.number,
    status: r.status,
    imageDigest: r.imageDigest,
    rolloutStartedAt: r.rolloutStartedAt ? r.rolloutStartedAt.getTime() : null,
    rolloutDeadlineMs: runConfig(service, r).rolloutDeadlineMs,
    minReadyMs: runConfig(service, r).minReadyMs,
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
  };
}

export function replicaSpec(
  service: ServiceState['service'],
  revision: RevisionRow,
  replica: { id: string; generation: number },
): ReplicaSpec {
  const rc = runConfig(service, revision);
  return {
    replicaId: replica.id,
    serviceId: service.id,
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
    restart: rc.restart,
    healthCheck: rc.healthCheck,
  };
}
