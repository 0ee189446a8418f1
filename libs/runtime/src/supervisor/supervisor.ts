/**
 * Drives one replica through the replica state machine of `@berth/contracts` with a ContainerRuntime:
 *
 *   STARTING → RUNNING → READY            (READY once the health check passes; at once without one)
 *   RUNNING|READY → EXITED → STARTING     (restart now)
 *                          → BACKOFF → STARTING (restart after a delay)
 *                          → FAILED      (policy exhausted / permanent start error)
 *                          → STOPPED     (clean exit that is not restarted)
 *   any → STOPPING → STOPPED              (stop())
 *
 * Every state change goes through `assertReplicaTransition` and is announced with `report(state,
 * details)`; the supervisor knows nothing about queues or databases. A replica keeps its container id
 * across restarts (the old container is destroyed, logs kept). `adopt(handle)` resumes supervision of
 * a container that survived an agent restart without touching it.
 */
import { assertReplicaTransition, HealthCheckSpec, ReplicaState } from '@berth/contracts';
import { Clock, systemClock, TimerId } from '../clock';
import type { ContainerHandle, ContainerRuntime, ContainerSpec, ExitResult } from '../container-runtime';
import { HealthProber } from './health-prober';
import type { ProbeDialer } from './probe-dialer';
import { BackoffOptions, describeExit, RestartPolicy, RestartTracker } from './restart-tracker';

export interface ReplicaReportDetails {
  restartCount: number;
  address?: string | null;
  port?: number;
  pid?: number;
  exitCode?: number;
  signal?: string | null;
  oomKilled?: boolean;
  delayMs?: number;
  reason?: string;
  /** STOPPED/FAILED because the process ended and the restart policy keeps it stopped (not a stop request). */
  completed?: boolean;
}

export interface SupervisorOptions {
  runtime: ContainerRuntime;
  /** The spec for each run; called once per (re)start, always with the same id. */
  buildSpec: () => ContainerSpec | Promise<ContainerSpec>;
  restart: RestartPolicy;
  backoff?: Partial<BackoffOptions>;
  healthCheck: HealthCheckSpec | null;
  /** The replica's serving port (reported with RUNNING/READY); null for a worker. Probed unless the check names its own port. */
  port: number | null;
  dialer: ProbeDialer;
  report: (state: ReplicaState, details: ReplicaReportDetails) => void;
  clock?: Clock;
  random?: () => number;
  /** Grace period when a failing liveness check makes us stop the container. */
  stopGraceMs?: number;
  startupTimeoutMs?: number;
}

const TERMINAL: ReplicaState[] = ['STOPPED', 'FAILED'];

export class ReplicaSupervisor {
  private state: ReplicaState | null = null;
  private readonly tracker: RestartTracker;
  private readonly clock: Clock;
  private containerId: string | null = null;
  private handle: ContainerHandle | null = null;
  private lastExit: ExitResult | null = null;
  private prober: HealthProber | null = null;
  private backoffTimer: TimerId | null = null;
  private stopping = false;
  private inFlight: Promise<void> = Promise.resolve();
  private resolveDone!: (s: ReplicaState) => void;
  /** Resolves with STOPPED or FAILED once the replica is finished. */
  readonly done: Promise<ReplicaState>;

  constructor(private readonly o: SupervisorOptions) {
    this.clock = o.clock ?? systemClock;
    this.tracker = new RestartTracker(o.restart, o.backoff, () => this.clock.now(), o.random ?? Math.random);
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  get currentState(): ReplicaState | null {
    return this.state;
  }
  get restartCount(): number {
    return this.tracker.restartCount;
  }
  get restartHistory() {
    return this.tracker.history;
  }

  /** Starts the first run. Resolves once it is running (or its failure has been handled). */
  start(): Promise<void> {
    if (this.state !== null) throw new Error(`supervisor already started (state ${this.state})`);
    this.inFlight = this.runAttempt();
    return this.inFlight;
  }

  /** Resumes supervision of a container recovered after an agent restart; never restarts a live one. */
  async adopt(handle: ContainerHandle): Promise<void> {
    if (this.state !== null) throw new Error(`supervisor already started (state ${this.state})`);
    this.containerId = handle.id;
    this.handle = handle;
    this.tracker.setStarted(handle.startedAt.getTime());
    const info = await this.o.runtime.inspect(handle.id);
    if (info.status === 'stopped' && info.exit) {
      // It ended while nobody watched: handle that exit as if we had seen it.
      this.state = 'RUNNING';
      await this.onExit(info.exit);
      return;
    }
    this.transition('RUNNING', { address: handle.address, port: this.o.port ?? undefined, pid: handle.pid, reason: 'adopted after agent restart' });
    this.afterRunning(handle);
  }

  /** STOPPING → STOPPED: kills the container (SIGTERM, grace, SIGKILL) and releases it. */
  async stop(reason = 'stop requested', graceMs = 10_000): Promise<void> {
    if (this.stopping || (this.state && TERMINAL.includes(this.state))) return;
    this.stopping = true;
    this.tracker.setKilled();
    if (this.backoffTimer !== null) this.clock.clearTimeout(this.backoffTimer);
    this.prober?.stop();
    await this.inFlight.catch(() => undefined);
    if (this.state && TERMINAL.includes(this.state)) return;
    this.transition('STOPPING', { reason });
    if (this.containerId) {
      await this.o.runtime.stop(this.containerId, { timeoutMs: graceMs }).catch(() => undefined);
      await this.o.runtime.destroy(this.containerId).catch(() => undefined);
    }
    this.finish('STOPPED', { reason });
  }

  private async runAttempt(): Promise<void> {
    this.backoffTimer = null;
    if (this.stopping) return;
    this.transition('STARTING', {});
    let handle: ContainerHandle;
    try {
      const spec = await this.o.buildSpec();
      this.containerId = spec.id;
      handle = await this.o.runtime.start(spec);
    } catch (e) {
      if (this.stopping) return;
      const err = e as Error & { recoverable?: boolean };
      this.tracker.setStartError({ message: err.message, recoverable: err.recoverable ?? true });
      this.lastExit = null;
      this.transition('EXITED', { reason: `start failed: ${err.message}` });
      await this.applyDecision();
      return;
    }
    this.handle = handle;
    this.tracker.setStarted();
    if (this.stopping) return;
    this.transition('RUNNING', { address: handle.address, port: this.o.port ?? undefined, pid: handle.pid });
    this.afterRunning(handle);
  }

  private afterRunning(handle: ContainerHandle) {
    void this.o.runtime.wait(handle.id).then(
      (exit) => {
        if (this.handle !== handle) return; // a stale wait from an earlier run
        this.inFlight = this.onExit(exit);
      },
      () => undefined, // destroyed under us: stop() owns that path
    );
    if (!this.o.healthCheck) {
      this.transition('READY', { address: handle.address, port: this.o.port ?? undefined, pid: handle.pid });
      return;
    }
    this.prober = new HealthProber({
      check: this.o.healthCheck,
      host: handle.address ?? '127.0.0.1',
      port: this.o.healthCheck.port ?? this.o.port ?? 0,
      dialer: this.o.dialer,
      clock: this.clock,
      startupTimeoutMs: this.o.startupTimeoutMs,
      onEvent: (e) => {
        if (this.stopping || this.handle !== handle) return;
        if (e.type === 'ready') {
          this.transition('READY', { address: handle.address, port: this.o.port ?? undefined, pid: handle.pid });
        } else {
          this.tracker.setHealthFailure(e.reason);
          if (this.state === 'READY') this.transition('RUNNING', { reason: `unhealthy: ${e.reason}` });
          // The exit that follows is decided with the health failure as its reason.
          void this.o.runtime.stop(handle.id, { timeoutMs: this.o.stopGraceMs ?? 10_000 }).catch(() => undefined);
        }
      },
    });
    this.prober.start();
  }

  private async onExit(exit: ExitResult): Promise<void> {
    if (this.stopping) return;
    this.prober?.stop();
    this.prober = null;
    this.handle = null;
    this.tracker.setExitResult(exit);
    this.lastExit = exit;
    this.transition('EXITED', { exitCode: exit.code, signal: exit.signal, oomKilled: exit.oomKilled, reason: describeExit(exit) });
    await this.applyDecision();
  }

  private async applyDecision(): Promise<void> {
    const d = this.tracker.decide();
    if (this.stopping) return;
    if (this.containerId) await this.o.runtime.destroy(this.containerId, { keepLogs: true }).catch(() => undefined);
    if (this.stopping) return;
    switch (d.action) {
      case 'restart':
        this.inFlight = this.runAttempt();
        return this.inFlight;
      case 'backoff':
        this.transition('BACKOFF', { delayMs: d.delayMs, reason: d.reason });
        this.backoffTimer = this.clock.setTimeout(() => {
          this.inFlight = this.runAttempt();
        }, d.delayMs);
        return;
      case 'fail':
      case 'none': {
        // The policy keeps it stopped: say so, with the exit that ended it (the scheduler leaves its slot be).
        const exit = this.lastExit;
        this.finish(d.action === 'fail' ? 'FAILED' : 'STOPPED', {
          reason: d.reason,
          completed: true,
          ...(exit ? { exitCode: exit.code, signal: exit.signal, oomKilled: exit.oomKilled } : {}),
        });
        return;
      }
    }
  }

  private finish(state: 'STOPPED' | 'FAILED', details: Omit<ReplicaReportDetails, 'restartCount'>) {
    this.transition(state, details);
    this.resolveDone(state);
  }

  private transition(to: ReplicaState, details: Omit<ReplicaReportDetails, 'restartCount'>) {
    if (this.state !== null) assertReplicaTransition(this.state, to);
    this.state = to;
    this.o.report(to, { restartCount: this.tracker.restartCount, ...details });
  }
}
