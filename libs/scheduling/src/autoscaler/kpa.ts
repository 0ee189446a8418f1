/**
 * Concurrency-based autoscaling decisions, modelled on Knative's KPA.
 *
 * Vocabulary:
 * - concurrency: in-flight requests for a service, summed over every gateway, sampled about once a second.
 * - stable window (default 60 s): the average over it sets the steady-state replica count.
 * - panic window (default 6 s): a short average; when the demand it implies reaches `panicThreshold`×
 *   the current capacity the decider panics: it scales up on the short average and never scales down
 *   until the load has stayed under the threshold for a whole stable window.
 * - capacity: ready replicas (at least 1, so a service that is still starting or at zero is treated as one).
 * - scale-down rate: at most divide capacity by `maxScaleDownRate` per decision (2 = at most halve).
 * - scale to zero: when min is 0 and the stable demand is 0, the last replica is kept for
 *   `scaleToZeroGraceMs` after the decision first wanted zero, then released.
 *
 * Pure: the caller passes the time, the samples and the state from the previous decision, and gets the
 * next state back.
 */

export interface AutoscalerSettings {
  stableWindowMs: number;
  panicWindowMs: number;
  /** Panic when panic-window demand / capacity >= this (in replicas). */
  panicThreshold: number;
  /** Capacity may shrink by at most this factor per decision (2 = halve). */
  maxScaleDownRate: number;
  /** Capacity may grow by at most this factor per decision. */
  maxScaleUpRate: number;
  /** Time the last replica is kept after the decider first wanted zero. */
  scaleToZeroGraceMs: number;
}

export const defaultAutoscalerSettings: AutoscalerSettings = {
  stableWindowMs: 60_000,
  panicWindowMs: 6_000,
  panicThreshold: 2,
  maxScaleDownRate: 2,
  maxScaleUpRate: 1000,
  scaleToZeroGraceMs: 30_000,
};

/** Rejects settings that would make the math meaningless (a 0 s window, a rate below 1). */
export function validateAutoscalerSettings(s: AutoscalerSettings): AutoscalerSettings {
  const problems: string[] = [];
  if (!(s.stableWindowMs > 0)) problems.push(`stableWindowMs must be > 0, got ${s.stableWindowMs}`);
  if (!(s.panicWindowMs > 0)) problems.push(`panicWindowMs must be > 0, got ${s.panicWindowMs}`);
  if (s.panicWindowMs > s.stableWindowMs) problems.push(`panicWindowMs (${s.panicWindowMs}) must not exceed stableWindowMs (${s.stableWindowMs})`);
  if (!(s.panicThreshold >= 1)) problems.push(`panicThreshold must be >= 1, got ${s.panicThreshold}`);
  if (!(s.maxScaleDownRate > 1)) problems.push(`maxScaleDownRate must be > 1, got ${s.maxScaleDownRate}`);
  if (!(s.maxScaleUpRate > 1)) problems.push(`maxScaleUpRate must be > 1, got ${s.maxScaleUpRate}`);
  if (!(s.scaleToZeroGraceMs >= 0)) problems.push(`scaleToZeroGraceMs must be >= 0, got ${s.scaleToZeroGraceMs}`);
  if (problems.length) throw new Error(`invalid autoscaler settings: ${problems.join('; ')}`);
  return s;
}

export interface ConcurrencySample {
  /** Epoch ms. */
  at: number;
  /** Average in-flight requests during the second ending at `at`, summed over gateways. */
  concurrency: number;
}

export interface ScaleTarget {
  minScale: number;
  maxScale: number;
  targetConcurrency: number;
  /** Service.desiredReplicas as last written. */
  currentDesired: number;
  readyReplicas: number;
}

/** What the decider remembers between decisions for one service. */
export interface DeciderState {
  /** Last time the panic-window demand was over the threshold; null when not panicking. */
  panicSince: number | null;
  /** First decision (of the current idle stretch) that wanted zero replicas; null otherwise. */
  zeroWantedSince: number | null;
}

export const initialDeciderState = (): DeciderState => ({ panicSince: null, zeroWantedSince: null });

export type ScaleMode = 'stable' | 'panic';

export interface ScaleDecision {
  desired: number;
  mode: ScaleMode;
  /** Average concurrency over the stable / panic window; null when there were no samples. */
  stableConcurrency: number | null;
  panicConcurrency: number | null;
  /** Short human-readable cause, stored with the event. */
  reason: string;
  state: DeciderState;
}

/** Mean concurrency of the samples in (now - windowMs, now]; null when the window holds none. */
export function windowAverage(samples: readonly ConcurrencySample[], now: number, windowMs: number): number | null {
  let sum = 0;
  let n = 0;
  for (const s of samples) {
    if (s.at > now - windowMs && s.at <= now) {
      sum += s.concurrency;
      n++;
    }
  }
  return n === 0 ? null : sum / n;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

export function decideScale(input: {
  now: number;
  settings: AutoscalerSettings;
  target: ScaleTarget;
  samples: readonly ConcurrencySample[];
  state: DeciderState;
}): ScaleDecision {
  const { now, settings: s, target: t, samples } = input;
  const minScale = Math.max(0, t.minScale);
  const maxScale = Math.max(minScale, t.maxScale);
  const targetConcurrency = Math.max(t.targetConcurrency, 0.01);
  const stable = windowAverage(samples, now, s.stableWindowMs);
  const panic = windowAverage(samples, now, s.panicWindowMs) ?? stable;

  if (stable === null || panic === null) {
    // No gateway reported anything: hold the current scale (inside the bounds) rather than guess.
    return {
      desired: clamp(t.currentDesired, minScale, maxScale),
      mode: input.state.panicSince !== null ? 'panic' : 'stable',
      stableConcurrency: null,
      panicConcurrency: null,
      reason: 'no concurrency data',
      state: input.state,
    };
  }

  const capacity = Math.max(1, t.readyReplicas);
  const desiredStable = Math.ceil(stable / targetConcurrency);
  const desiredPanic = Math.ceil(panic / targetConcurrency);
  const overPanicThreshold = panic / targetConcurrency / capacity >= s.panicThreshold;

  let panicSince = input.state.panicSince;
  if (overPanicThreshold) panicSince = now;
  else if (panicSince !== null && now - panicSince >= s.stableWindowMs) panicSince = null;
  const mode: ScaleMode = panicSince !== null ? 'panic' : 'stable';

  // Rate limits are relative to what is actually serving; dropping from one replica is left to the grace.
  const upperBound = Math.ceil(capacity * s.maxScaleUpRate);
  const lowerBound = capacity <= 1 ? 0 : Math.ceil(capacity / s.maxScaleDownRate);

  let desired: number;
  let reason: string;
  if (mode === 'panic') {
    desired = Math.max(t.currentDesired, desiredPanic, desiredStable);
    reason = overPanicThreshold ? 'panic: short-window demand over threshold' : 'panic: holding until stable window passes';
  } else {
    desired = desiredStable;
    reason = 'stable-window demand';
  }
  // Bounds never push against the direction of the change (e.g. while replicas are still starting).
  const floor = Math.min(lowerBound, t.currentDesired);
  const ceiling = Math.max(upperBound, t.currentDesired);
  if (desired < floor) {
    desired = floor;
    reason += ' (scale-down rate limited)';
  } else if (desired > ceiling) {
    desired = ceiling;
    reason += ' (scale-up rate limited)';
  }
  desired = clamp(desired, minScale, maxScale);

  let zeroWantedSince = input.state.zeroWantedSince;
  if (desired === 0) {
    zeroWantedSince ??= now;
    if (t.currentDesired > 0 && now - zeroWantedSince < s.scaleToZeroGraceMs) {
      desired = 1;
      reason = 'idle: keeping one replica for the scale-to-zero grace';
    } else {
      reason = 'idle past the scale-to-zero grace';
    }
  } else {
    zeroWantedSince = null;
  }

  return {
    desired,
    mode,
    stableConcurrency: stable,
    panicConcurrency: panic,
    reason,
    state: { panicSince, zeroWantedSince },
  };
}
