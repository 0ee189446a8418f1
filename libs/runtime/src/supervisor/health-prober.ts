/**
 * Readiness and liveness probing of one container: HTTP GET (2xx/3xx passes) or TCP connect, every
 * `intervalMs`, each attempt bounded by `timeoutMs`. Emits `ready` after `successThreshold`
 * consecutive passes; once ready, `failureThreshold` consecutive failures emit `liveness-failure`
 * (the supervisor restarts per policy). Before the first `ready`, failures only delay readiness,
 * unless `startupTimeoutMs` passes first. Timers come from the injected clock.
 *
 * Until the first pass, a failed probe is retried after 10 ms, doubling up to `intervalMs`: most
 * apps listen within milliseconds of starting, and a replica is only routable once READY, so
 * waiting a whole interval after the first refused connection would add seconds to every start and
 * cold start. Passes before `successThreshold` is reached are spaced by `intervalMs`.
 */
import type { HealthCheckSpec } from '@berth/contracts';
import { Clock, TimerId } from '../clock';
import type { ProbeDialer } from './probe-dialer';

export type ProbeEvent =
  | { type: 'ready' }
  | { type: 'liveness-failure'; reason: string };

export interface HealthProberOptions {
  check: HealthCheckSpec;
  host: string;
  port: number;
  dialer: ProbeDialer;
  clock: Clock;
  onEvent: (e: ProbeEvent) => void;
  /** Give up on a container that never becomes ready (reported as a liveness failure). */
  startupTimeoutMs?: number;
}

export function validateHealthCheck(c: HealthCheckSpec): void {
  if (c.type !== 'http' && c.type !== 'tcp') throw new Error(`health check type must be http or tcp, got ${JSON.stringify(c.type)}`);
  for (const k of ['intervalMs', 'timeoutMs', 'successThreshold', 'failureThreshold'] as const) {
    if (!Number.isInteger(c[k]) || c[k] < 1) throw new Error(`health check ${k} must be a positive integer, got ${c[k]}`);
  }
  if (c.port !== undefined && (!Number.isInteger(c.port) || c.port < 1 || c.port > 65535)) throw new Error(`health check port must be 1..65535, got ${c.port}`);
  if (c.type === 'http' && c.path !== undefined && !c.path.startsWith('/')) throw new Error(`health check path must start with "/", got ${c.path}`);
}

/** First retry delay after a failed probe before the container was ever ready. */
export const STARTUP_FIRST_RETRY_MS = 10;

export class HealthProber {
  private timer: TimerId | null = null;
  private startupTimer: TimerId | null = null;
  private running = false;
  private successes = 0;
  private failures = 0;
  private everReady = false;
  private lastError = '';
  private startupDelayMs = STARTUP_FIRST_RETRY_MS;
  /** Outcomes of every probe, for logs and tests. */
  probes = 0;

  constructor(private readonly o: HealthProberOptions) {
    validateHealthCheck(o.check);
  }

  get ready(): boolean {
    return this.everReady && this.failures < this.o.check.failureThreshold;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    if (this.o.startupTimeoutMs !== undefined) {
      this.startupTimer = this.o.clock.setTimeout(() => {
        if (!this.running || this.everReady) return;
        this.stop();
        this.o.onEvent({ type: 'liveness-failure', reason: `not ready within ${this.o.startupTimeoutMs} ms (${this.lastError || 'no passing probe'})` });
      }, this.o.startupTimeoutMs);
    }
    this.schedule(0);
  }

  stop(): void {
    this.running = false;
    if (this.timer !== null) this.o.clock.clearTimeout(this.timer);
    if (this.startupTimer !== null) this.o.clock.clearTimeout(this.startupTimer);
    this.timer = this.startupTimer = null;
  }

  private schedule(ms: number) {
    this.timer = this.o.clock.setTimeout(() => void this.probeOnce(), ms);
  }

  private async probeOnce(): Promise<void> {
    if (!this.running) return;
    const error = await this.attempt();
    if (!this.running) return;
    this.probes++;
    if (error === null) {
      this.failures = 0;
      this.successes++;
      if (!this.everReady && this.successes >= this.o.check.successThreshold) {
        this.everReady = true;
        if (this.startupTimer !== null) this.o.clock.clearTimeout(this.startupTimer);
        this.o.onEvent({ type: 'ready' });
      }
    } else {
      this.lastError = error;
      this.successes = 0;
      this.failures++;
      if (this.everReady && this.failures >= this.o.check.failureThreshold) {
        this.stop();
        this.o.onEvent({ type: 'liveness-failure', reason: `${this.failures} consecutive failed probes, last: ${error}` });
        return;
      }
    }
    if (!this.running) return;
    if (!this.everReady && error !== null) {
      this.schedule(Math.min(this.startupDelayMs, this.o.check.intervalMs));
      this.startupDelayMs *= 2;
    } else {
      this.schedule(this.o.check.intervalMs);
    }
  }

  /** null when the probe passed, else why it failed. */
  private attempt(): Promise<string | null> {
    const { check, host, port, dialer, clock } = this.o;
    return new Promise((resolve) => {
      let settled = false;
      const finish = (v: string | null) => {
        if (settled) return;
        settled = true;
        clock.clearTimeout(t);
        resolve(v);
      };
      const t = clock.setTimeout(() => finish(`timed out after ${check.timeoutMs} ms`), check.timeoutMs);
      const probe =
        check.type === 'http'
          ? dialer.httpGet(host, port, check.path ?? '/', check.timeoutMs).then((status) => (status >= 200 && status < 400 ? null : `HTTP ${status}`))
          : dialer.tcpConnect(host, port, check.timeoutMs).then(() => null);
      probe.then(finish, (e: Error) => finish(e?.message ?? String(e)));
    });
  }
}
