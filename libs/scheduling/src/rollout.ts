/**
 * Rollout arithmetic (Kubernetes Deployment semantics): maxSurge rounds up, maxUnavailable rounds
 * down, and when both come out 0 surge becomes 1 so a rollout can always make progress.
 */
export const DEFAULT_MAX_SURGE = '25%';
export const DEFAULT_MAX_UNAVAILABLE = '0';

/** Parses "25%" or "2" against `total`; `roundUp` for surge, down for unavailable. Null when malformed. */
export function resolveIntOrPercent(value: string, total: number, roundUp: boolean): number | null {
  const v = value.trim();
  const pct = /^(\d{1,3})%$/.exec(v);
  if (pct) {
    const p = Number(pct[1]);
    if (p > 100) return null;
    const raw = (p * total) / 100;
    return roundUp ? Math.ceil(raw) : Math.floor(raw);
  }
  if (/^\d{1,6}$/.test(v)) return Number(v);
  return null;
}

export interface RolloutBounds {
  surge: number;
  maxUnavailable: number;
  /** READY replicas that must remain while old ones are stopped. */
  minAvailable: number;
}

export function rolloutBounds(desired: number, maxSurge: string, maxUnavailable: string): RolloutBounds {
  const surge = resolveIntOrPercent(maxSurge, desired, true) ?? resolveIntOrPercent(DEFAULT_MAX_SURGE, desired, true)!;
  const unavailable =
    resolveIntOrPercent(maxUnavailable, desired, false) ?? resolveIntOrPercent(DEFAULT_MAX_UNAVAILABLE, desired, false)!;
  const u = Math.min(unavailable, desired);
  const s = surge === 0 && u === 0 ? 1 : surge;
  return { surge: s, maxUnavailable: u, minAvailable: Math.max(0, desired - u) };
}
