import type { HealthCheckSpec } from '@berth/contracts';

/**
 * A service's desired configuration as the api speaks it, and the rules for turning it into
 * Service columns and Revision snapshots. Pure: no I/O.
 *
 * "What runs" (image, port, env, command, resources, restart policy, health check) is what a
 * Revision pins; changing any of it creates a new revision. Scaling, placement, constraints and
 * rollout settings change how many and where, not what: they update the service only.
 */
export type RestartPolicyName = 'no' | 'always' | 'on-failure';
export type PlacementName = 'spread' | 'binpack';

export interface ServiceSpec {
  port: number;
  env: Record<string, string>;
  command: string[] | null;
  resources: { cpuMillis: number; memoryMiB: number; pids: number };
  restartPolicy: { policy: RestartPolicyName; maxRetries: number };
  healthCheck: HealthCheckSpec | null;
  scaling: { min: number; max: number; targetConcurrency: number };
  placement: PlacementName;
  constraints: Record<string, string>;
  rollout: { maxSurge: string; maxUnavailable: string };
}

export const DEFAULT_HEALTH_CHECK = (type: 'http' | 'tcp' = 'tcp'): HealthCheckSpec => ({
  type,
  ...(type === 'http' ? { path: '/' } : {}),
  intervalMs: 5000,
  timeoutMs: 2000,
  successThreshold: 1,
  failureThreshold: 3,
});

export const DEFAULT_SPEC: ServiceSpec = {
  port: 8080,
  env: {},
  command: null,
  resources: { cpuMillis: 250, memoryMiB: 256, pids: 256 },
  restartPolicy: { policy: 'always', maxRetries: 0 },
  healthCheck: DEFAULT_HEALTH_CHECK('tcp'),
  scaling: { min: 1, max: 1, targetConcurrency: 100 },
  placement: 'spread',
  constraints: {},
  rollout: { maxSurge: '25%', maxUnavailable: '0' },
};

export const RUN_FIELDS = ['port', 'env', 'command', 'resources', 'restartPolicy', 'healthCheck'] as const;
export type RunFields = Pick<ServiceSpec, (typeof RUN_FIELDS)[number]>;

/** What a Revision.config holds: the pinned image plus the whole spec at that moment. */
export interface RevisionConfig extends ServiceSpec {
  image: { reference: string; digest: string };
}

const RESTART_TO_DB = { no: 'NO', always: 'ALWAYS', 'on-failure': 'ON_FAILURE' } as const;
const RESTART_FROM_DB = { NO: 'no', ALWAYS: 'always', ON_FAILURE: 'on-failure' } as const;

export interface ServiceRow {
  port: number;
  env: unknown;
  command: unknown;
  cpuMillis: number;
  memoryMiB: number;
  pidsLimit: number;
  restartPolicy: 'NO' | 'ALWAYS' | 'ON_FAILURE';
  restartMaxRetries: number;
  healthCheck: unknown;
  minScale: number;
  maxScale: number;
  targetConcurrency: number;
  placement: 'SPREAD' | 'BINPACK';
  constraints: unknown;
  maxSurge: string;
  maxUnavailable: string;
}

export function specFromRow(s: ServiceRow): ServiceSpec {
  return {
    port: s.port,
    env: (s.env ?? {}) as Record<string, string>,
    command: (s.command ?? null) as string[] | null,
    resources: { cpuMillis: s.cpuMillis, memoryMiB: s.memoryMiB, pids: s.pidsLimit },
    restartPolicy: { policy: RESTART_FROM_DB[s.restartPolicy], maxRetries: s.restartMaxRetries },
    healthCheck: (s.healthCheck ?? null) as HealthCheckSpec | null,
    scaling: { min: s.minScale, max: s.maxScale, targetConcurrency: s.targetConcurrency },
    placement: s.placement === 'BINPACK' ? 'binpack' : 'spread',
    constraints: (s.constraints ?? {}) as Record<string, string>,
    rollout: { maxSurge: s.maxSurge, maxUnavailable: s.maxUnavailable },
  };
}

/** Service columns for a spec (Json null is written as the DB null via `null`). */
export function rowFromSpec(spec: ServiceSpec) {
  return {
    port: spec.port,
    env: spec.env,
    command: spec.command as unknown as object,
    cpuMillis: spec.resources.cpuMillis,
    memoryMiB: spec.resources.memoryMiB,
    pidsLimit: spec.resources.pids,
    restartPolicy: RESTART_TO_DB[spec.restartPolicy.policy],
    restartMaxRetries: spec.restartPolicy.maxRetries,
    healthCheck: spec.healthCheck as unknown as object,
    minScale: spec.scaling.min,
    maxScale: spec.scaling.max,
    targetConcurrency: spec.scaling.targetConcurrency,
    placement: spec.placement === 'binpack' ? ('BINPACK' as const) : ('SPREAD' as const),
    constraints: spec.constraints,
    maxSurge: spec.rollout.maxSurge,
    maxUnavailable: spec.rollout.maxUnavailable,
  };
}

export function runFieldsOf(spec: ServiceSpec): RunFields {
  return {
    port: spec.port,
    env: spec.env,
    command: spec.command,
    resources: spec.resources,
    restartPolicy: spec.restartPolicy,
    healthCheck: spec.healthCheck,
  };
}

/** Deterministic JSON (sorted keys) so equal configs compare equal whatever the key order. */
export function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v ?? null);
}

export const sameRun = (a: RunFields, b: RunFields) => canonical(runFieldsOf(a as ServiceSpec)) === canonical(runFieldsOf(b as ServiceSpec));

export interface ConfigChange {
  field: string;
  from: unknown;
  to: unknown;
}

/** Field-level differences between two revision configs; env is compared per variable. */
export function diffConfigs(a: Partial<RevisionConfig>, b: Partial<RevisionConfig>): ConfigChange[] {
  const changes: ConfigChange[] = [];
  const cmp = (field: string, x: unknown, y: unknown) => {
    if (canonical(x) !== canonical(y)) changes.push({ field, from: x ?? null, to: y ?? null });
  };
  cmp('image.reference', a.image?.reference, b.image?.reference);
  cmp('image.digest', a.image?.digest, b.image?.digest);
  cmp('port', a.port, b.port);
  const ea = a.env ?? {};
  const eb = b.env ?? {};
  for (const k of [...new Set([...Object.keys(ea), ...Object.keys(eb)])].sort()) cmp(`env.${k}`, ea[k], eb[k]);
  cmp('command', a.command, b.command);
  for (const k of ['cpuMillis', 'memoryMiB', 'pids'] as const) cmp(`resources.${k}`, a.resources?.[k], b.resources?.[k]);
  cmp('restartPolicy', a.restartPolicy, b.restartPolicy);
  cmp('healthCheck', a.healthCheck, b.healthCheck);
  cmp('scaling', a.scaling, b.scaling);
  cmp('placement', a.placement, b.placement);
  cmp('constraints', a.constraints, b.constraints);
  cmp('rollout', a.rollout, b.rollout);
  return changes;
}

/** Replicas to run after a scaling change: the explicit count, else the current one clamped into [min, max]. */
export function desiredReplicas(current: number, scaling: ServiceSpec['scaling'], explicit?: number): number {
  if (explicit !== undefined) return explicit;
  return Math.min(scaling.max, Math.max(scaling.min, current));
}
