import {
  parseServiceSpec,
  runFieldsOf,
  type RevisionConfig,
  type RunFields,
  type ServiceSpec,
} from '@berth/contracts';

/**
 * The rules for turning a service's configuration (its one definition is `ServiceSpecSchema` in
 * `@berth/contracts`) into Service columns and back, and for comparing configurations. Pure: no I/O.
 *
 * "What runs" (image, port, env, command, resources, restart policy, health check) is what a
 * Revision pins; changing any of it creates a new revision. Scaling, placement, constraints and
 * rollout settings change how many and where, not what: they update the service only.
 */
export { DEFAULT_HEALTH_CHECK, DEFAULT_SPEC, RUN_FIELDS, runFieldsOf } from '@berth/contracts';
export type { RevisionConfig, RunFields, ServiceSpec } from '@berth/contracts';

const RESTART_TO_DB = { no: 'NO', always: 'ALWAYS', 'on-failure': 'ON_FAILURE' } as const;
const RESTART_FROM_DB = { NO: 'no', ALWAYS: 'always', ON_FAILURE: 'on-failure' } as const;

export interface ServiceRow {
  port: number | null;
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

/** A service row's configuration, parsed against the contract (a row that does not match is a bug: it throws naming the fields). */
export function specFromRow(s: ServiceRow): ServiceSpec {
  return parseServiceSpec({
    port: s.port,
    env: s.env ?? {},
    command: s.command ?? null,
    resources: { cpuMillis: s.cpuMillis, memoryMiB: s.memoryMiB, pids: s.pidsLimit },
    restartPolicy: { policy: RESTART_FROM_DB[s.restartPolicy], maxRetries: s.restartMaxRetries },
    healthCheck: s.healthCheck ?? null,
    scaling: { min: s.minScale, max: s.maxScale, targetConcurrency: s.targetConcurrency },
    placement: s.placement === 'BINPACK' ? 'binpack' : 'spread',
    constraints: s.constraints ?? {},
    rollout: { maxSurge: s.maxSurge, maxUnavailable: s.maxUnavailable },
  }, 'service row');
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

export const sameRun = (a: RunFields, b: RunFields) => canonical(runFieldsOf(a)) === canonical(runFieldsOf(b));

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
