/**
 * Restart policy as a pure class (Nomad's restart tracker is the model): setters record what
 * happened to the last run, `decide()` returns what to do next and why. Time and randomness are
 * injected; nothing here sleeps.
 *
 * Policies
 * - `no`: never restart. A clean exit (code 0) → `none`, anything else → `fail`.
 * - `on-failure`: restart after a failure (non-zero exit, OOM kill, failed health check, start
 *   error) up to `maxRetries` consecutive restarts (0: without limit, as Docker's plain
 *   `on-failure`), then `fail`; a clean exit → `none`.
 * - `always`: restart after any exit, without limit (`maxRetries` is ignored).
 * A start error that cannot get better (bad spec, missing executable) → `fail` at once; a run we
 * killed ourselves (stop) → `none`.
 *
 * Delays: the first restart after a healthy period is immediate (`restart`); the following ones are
 * `backoff` with initialDelayMs × multiplier^(n-1), capped at maxDelayMs, ± jitter. A run that lasted
 * resetAfterMs (default 10 min, as Kubernetes resets CrashLoopBackOff) resets the delay and the
 * on-failure retry budget.
 */
import type { ExitResult } from '../container-runtime';

export type RestartPolicyName = 'no' | 'always' | 'on-failure';
export interface RestartPolicy {
  policy: RestartPolicyName;
  maxRetries: number;
}

export interface BackoffOptions {
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  /** Fraction of the delay added or removed at random (0.2 → ±20 %). */
  jitter: number;
  resetAfterMs: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialDelayMs: 10_000,
  maxDelayMs: 5 * 60_000,
  multiplier: 2,
  jitter: 0.2,
  resetAfterMs: 10 * 60_000,
};

export type RestartAction = 'restart' | 'backoff' | 'fail' | 'none';
export interface RestartDecision {
  action: RestartAction;
  delayMs: number;
  reason: string;
}

export class RestartTracker {
  private readonly backoff: BackoffOptions;
  private startedAt: number | null = null;
  private exit: ExitResult | null = null;
  private startError: { message: string; recoverable: boolean } | null = null;
  private healthFailure: string | null = null;
  private killed = false;
  private consecutive = 0;
  private total = 0;
  /** Reason of every restart decided so far, oldest first. */
  readonly history: { at: number; action: RestartAction; reason: string; delayMs: number }[] = [];

  constructor(
    private readonly policy: RestartPolicy,
    backoff: Partial<BackoffOptions> = {},
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {
    if (!['no', 'always', 'on-failure'].includes(policy?.policy)) throw new Error(`unknown restart policy ${JSON.stringify(policy?.policy)}`);
    if (!Number.isInteger(policy.maxRetries) || policy.maxRetries < 0) throw new Error(`maxRetries must be a non-negative integer, got ${policy.maxRetries}`);
    this.backoff = { ...DEFAULT_BACKOFF, ...backoff };
    const b = this.backoff;
    if (b.initialDelayMs < 0 || b.maxDelayMs < b.initialDelayMs || b.multiplier < 1 || b.jitter < 0 || b.jitter >= 1) {
      throw new Error('backoff needs 0 ≤ initialDelayMs ≤ maxDelayMs, multiplier ≥ 1, 0 ≤ jitter < 1');
    }
  }

  /** Restarts decided in total. */
  get restartCount(): number {
    return this.total;
  }

  /** A run began (the process is running). */
  setStarted(at: number = this.now()): void {
    this.startedAt = at;
    this.killed = false;
  }
  setExitResult(exit: ExitResult): void {
    this.exit = exit;
  }
  setStartError(err: { message: string; recoverable?: boolean }): void {
    this.startError = { message: err.message, recoverable: err.recoverable ?? true };
    this.startedAt = null;
  }
  /** The run was ended because its liveness check failed. */
  setHealthFailure(reason: string): void {
    this.healthFailure = reason;
  }
  /** We stopped the run on purpose: no restart. */
  setKilled(): void {
    this.killed = true;
  }

  /** Decides from the facts recorded since the last decision, then forgets them. */
  decide(): RestartDecision {
    const d = this.compute();
    if (d.action === 'restart' || d.action === 'backoff') {
      this.consecutive++;
      this.total++;
    }
    this.history.push({ at: this.now(), ...d });
    this.exit = null;
    this.startError = null;
    this.healthFailure = null;
    this.killed = false;
    return d;
  }

  private compute(): RestartDecision {
    if (this.killed) return { action: 'none', delayMs: 0, reason: 'stopped on request' };
    let failed: boolean;
    let reason: string;
    if (this.startError) {
      if (!this.startError.recoverable) return { action: 'fail', delayMs: 0, reason: `start failed permanently: ${this.startError.message}` };
      failed = true;
      reason = `start failed: ${this.startError.message}`;
    } else if (this.healthFailure) {
      failed = true;
      reason = `health check failed: ${this.healthFailure}`;
    } else if (this.exit) {
      failed = this.exit.code !== 0 || this.exit.oomKilled;
      reason = describeExit(this.exit);
    } else {
      throw new Error('decide() called with nothing recorded: call setExitResult, setStartError or setKilled first');
    }
    if (this.startedAt !== null && !this.startError && this.now() - this.startedAt >= this.backoff.resetAfterMs) {
      this.consecutive = 0; // it ran long enough: a fresh crash loop starts from the shortest delay
    }
    switch (this.policy.policy) {
      case 'no':
        return failed ? { action: 'fail', delayMs: 0, reason: `${reason}; restart policy "no"` } : { action: 'none', delayMs: 0, reason };
      case 'on-failure':
        if (!failed) return { action: 'none', delayMs: 0, reason };
        if (this.policy.maxRetries > 0 && this.consecutive >= this.policy.maxRetries) {
          return { action: 'fail', delayMs: 0, reason: `${reason}; gave up after ${this.consecutive} restarts (on-failure:${this.policy.maxRetries})` };
        }
        return this.restartDecision(reason);
      case 'always':
        return this.restartDecision(reason);
    }
  }

  private restartDecision(reason: string): RestartDecision {
    const n = this.consecutive;
    if (n === 0) return { action: 'restart', delayMs: 0, reason };
    const { initialDelayMs, maxDelayMs, multiplier, jitter } = this.backoff;
    const base = Math.min(maxDelayMs, initialDelayMs * Math.pow(multiplier, n - 1));
    const delayMs = Math.round(Math.min(maxDelayMs, Math.max(0, base * (1 + jitter * (2 * this.random() - 1)))));
    return { action: 'backoff', delayMs, reason };
  }
}

export function describeExit(exit: ExitResult): string {
  if (exit.lost) return 'container lost (no exit status recorded)';
  if (exit.oomKilled) return `OOM killed (exit ${exit.code})`;
  return exit.signal ? `killed by ${exit.signal} (exit ${exit.code})` : `exited with code ${exit.code}`;
}
