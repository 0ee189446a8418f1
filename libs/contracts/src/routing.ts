/**
 * The routing table the scheduler publishes (Redis hash `RedisKey.routes`, field `<project>/<service>`)
 * and every gateway keeps in memory. A change is announced on `RedisKey.routesChannel` with the
 * field name as the message, so gateways refresh one entry within a second.
 */
export interface RouteEndpoint {
  replicaId: string;
  revisionId: string;
  /** Address reachable from the gateway (the replica's IP on its node's container network). */
  address: string;
  port: number;
}

export interface RouteEntry {
  serviceId: string;
  project: string;
  service: string;
  minScale: number;
  maxScale: number;
  targetConcurrency: number;
  /** Desired replicas right now (0 = scaled to zero: hold requests and wake it). */
  desiredReplicas: number;
  /** READY replicas only. */
  endpoints: RouteEndpoint[];
  /**
   * Replicas of this service that are on their way to READY (PENDING..RUNNING). Optional: when it is > 0
   * and `endpoints` is empty, the gateway holds requests (like a cold start) instead of answering 503.
   */
  startingReplicas?: number;
  updatedAt: string;
}

export const routeKey = (project: string, service: string) => `${project}/${service}`;

/** Gateway → scheduler: a request arrived for a service with no ready replicas. Deduplicated per service. */
export interface WakeJob {
  kind: 'wake';
  serviceId: string;
  at: string;
}

/** BullMQ job id of a wake: one per service while it is queued, so concurrent first requests wake it once. */
export const wakeJobIdParts = (serviceId: string) => ['wake', serviceId] as const;
