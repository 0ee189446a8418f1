import type { NodeView, ReplicaView, RevisionView, ServiceView } from './types';

/** Builders for specs: small, explicit, deterministic. */
export function node(name: string, over: Partial<NodeView> = {}): NodeView {
  return {
    id: `id-${name}`,
    name,
    status: 'READY',
    labels: {},
    capacity: { cpuMillis: 4000, memoryMiB: 4096, pids: 1000 },
    allocated: { cpuMillis: 0, memoryMiB: 0, pids: 0 },
    cachedImages: [],
    ...over,
  };
}

export function service(over: Partial<ServiceView> = {}): ServiceView {
  return {
    id: 'svc',
    desiredReplicas: 3,
    activeRevisionId: 'rev1',
    deleted: false,
    maxSurge: '25%',
    maxUnavailable: '0',
    placement: 'SPREAD',
    constraints: {},
    resources: { cpuMillis: 100, memoryMiB: 128, pids: 50 },
    ...over,
  };
}

export function revision(n: number, over: Partial<RevisionView> = {}): RevisionView {
  return { id: `rev${n}`, number: n, status: 'ACTIVE', imageDigest: `sha256:${n}`, rolloutStartedAt: 0, ...over };
}

let seq = 0;
export function replica(over: Partial<ReplicaView> = {}): ReplicaView {
  seq++;
  return {
    id: `r${String(seq).padStart(3, '0')}`,
    revisionId: 'rev1',
    nodeId: null,
    state: 'READY',
    generation: 1,
    createdAt: seq,
    ...over,
  };
}

export function ids(prefix = 'new') {
  let i = 0;
  return () => `${prefix}${++i}`;
}
