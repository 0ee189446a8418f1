/**
 * What `PUT /v1/services/:name/scale` (and `berth scale`) means next to the autoscaler.
 *
 * The autoscaler owns the replica count between the service's bounds `[min, max]`; what a user sets is
 * therefore a bound, never a count the autoscaler later takes back without saying so:
 * - `replicas: N` alone sets the floor, like Cloud Run's minimum instances: min = N (max raised to N if
 *   below), N replicas now, and the autoscaler adds replicas with load up to max and never goes below N.
 * - `min` / `max` set the bounds, like Knative's min-scale / max-scale annotations; a bound left out keeps
 *   its value (moved just enough to keep min ≤ max).
 * - `replicas: N` with `min` is the count now within the new bounds: the autoscaler may move it within
 *   them (down to min once its stable window has seen no load). The answer says so.
 * - min = max pins the count: the autoscaler does not change it.
 */
export interface ScaleRequest {
  min?: number;
  max?: number;
  replicas?: number;
  targetConcurrency?: number;
}

export interface ScaleCurrent {
  min: number;
  max: number;
  targetConcurrency: number;
  desired: number;
}

export interface ScaleResult {
  min: number;
  max: number;
  targetConcurrency: number;
  /** desiredReplicas right now. */
  desired: number;
  /** `replicas` set the floor (it was given without `min`). */
  floor: boolean;
}

export type ScaleResolution = { ok: true; value: ScaleResult } | { ok: false; field: string; message: string };

export function resolveScale(current: ScaleCurrent, req: ScaleRequest): ScaleResolution {
  if (req.min === undefined && req.max === undefined && req.replicas === undefined && req.targetConcurrency === undefined) {
    return { ok: false, field: 'replicas', message: 'give at least one of min, max, replicas, targetConcurrency' };
  }
  const floor = req.replicas !== undefined && req.min === undefined;
  const targetConcurrency = req.targetConcurrency ?? current.targetConcurrency;
  if (floor && req.max !== undefined && req.replicas! > req.max) {
    return { ok: false, field: 'replicas', message: `replicas (${req.replicas}) must not exceed max (${req.max}): replicas sets the minimum` };
  }
  if (req.min !== undefined && req.max !== undefined && req.min > req.max) {
    return { ok: false, field: 'min', message: `min (${req.min}) must not exceed max (${req.max})` };
  }
  let min = req.min ?? (floor ? req.replicas! : current.min);
  let max = req.max ?? Math.max(current.max, min);
  // Only max given, below the current min: the min comes down with it.
  if (req.min === undefined && !floor && min > max) min = max;
  if (max < 1) max = 1;
  if (req.replicas !== undefined && (req.replicas < min || req.replicas > max)) {
    return { ok: false, field: 'replicas', message: `replicas (${req.replicas}) must be within [min, max] = [${min}, ${max}]` };
  }
  const desired = req.replicas ?? Math.min(max, Math.max(min, current.desired));
  return { ok: true, value: { min, max, targetConcurrency, desired, floor } };
}

const replicasWord = (n: number) => `${n} replica${n === 1 ? '' : 's'}`;

/** One sentence saying what the autoscaler will do with these bounds (the API's and the CLI's answer). */
export function describeScaling(s: { min: number; max: number; desired: number }): string {
  if (s.min === s.max) return `fixed at ${replicasWord(s.min)}: the autoscaler does not change it`;
  const base = `min ${s.min}, max ${s.max}: the autoscaler keeps between ${s.min} and ${s.max} replicas with load`;
  const idle = s.min === 0 ? ' and scales to zero when idle' : '';
  const back = s.desired > s.min ? `; without load it goes back to ${s.min === 0 ? 'zero' : s.min} after its stable window` : '';
  return `${base}${idle} (${s.desired} now${back})`;
}
