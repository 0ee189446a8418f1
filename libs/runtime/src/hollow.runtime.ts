/**
 * ContainerRuntime without containers: every "container" is a few timers in memory, so one process
 * can host hundreds of simulated agents (the scheduler's scale benchmark). Behaviour per container
 * comes from `behavior(spec)` — by default the JSON in the annotation `berth.dev/hollow` — and all
 * time and randomness come from the injected clock and random, so runs are reproducible.
 * `probeDialer()` answers health probes the way the simulated app would.
 */
import { Clock, systemClock, TimerId } from './clock';
import {
  assertValidId,
  ContainerExistsError,
  ContainerHandle,
  ContainerInfo,
  ContainerLogReader,
  ContainerNotFoundError,
  ContainerRuntime,
  ContainerSpec,
  ExitResult,
  SIGNAL_NAMES,
  StartError,
  StopOptions,
} from './container-runtime';
import { validateResources } from './oci-spec';
import type { ProbeDialer } from './supervisor/probe-dialer';

export interface HollowBehavior {
  /** Time from start() to running; a range draws uniformly with the injected random. */
  startLatencyMs?: number | { min: number; max: number };
  /** start() rejects after the latency. */
  startError?: { message: string; recoverable?: boolean };
  /** The process ends by itself. */
  exit?: { afterMs: number; code: number; oomKilled?: boolean };
  /** What SIGTERM (or any non-KILL stop signal) does: exit with `code` after `afterMs`, or nothing. */
  onSignal?: { action: 'exit'; code: number; afterMs?: number } | { action: 'ignore' };
  /** When probes start passing. */
  ready?: 'immediately' | 'never' | { afterMs: number };
  /** Probes fail again this long after start (a hung app). */
  unhealthyAfterMs?: number;
  /** Lines written to the log at start. */
  logLines?: string[];
}

export const HOLLOW_ANNOTATION = 'berth.dev/hollow';

export interface HollowRuntimeOptions {
  clock?: Clock;
  random?: () => number;
  behavior?: (spec: ContainerSpec) => HollowBehavior;
  /** First two octets of simulated addresses. */
  addressPrefix?: string;
}

interface HollowContainer {
  spec: ContainerSpec;
  behavior: HollowBehavior;
  pid: number;
  address: string;
  startedAt: number;
  exit: ExitResult | null;
  waiters: ((e: ExitResult) => void)[];
  timers: TimerId[];
  log: string[];
  logListeners: Set<() => void>;
}

export function annotationBehavior(spec: ContainerSpec): HollowBehavior {
  const raw = spec.annotations?.[HOLLOW_ANNOTATION];
  if (!raw) return {};
  try {
    return JSON.parse(raw) as HollowBehavior;
  } catch {
    throw new StartError(`annotation ${HOLLOW_ANNOTATION} is not valid JSON`, false);
  }
}

export class HollowRuntime implements ContainerRuntime {
  readonly name = 'hollow';
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly behaviorOf: (spec: ContainerSpec) => HollowBehavior;
  private readonly prefix: string;
  private readonly containers = new Map<string, HollowContainer>();
  private readonly starting = new Set<string>();
  private nextPid = 1000;
  private nextAddress = 2;

  constructor(opts: HollowRuntimeOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.behaviorOf = opts.behavior ?? annotationBehavior;
    this.prefix = opts.addressPrefix ?? '10.255';
  }

  async start(spec: ContainerSpec): Promise<ContainerHandle> {
    assertValidId(spec?.id);
    validateResources(spec.resources);
    const id = spec.id;
    if (this.containers.has(id) || this.starting.has(id)) throw new ContainerExistsError(id);
    const behavior = this.behaviorOf(spec);
    this.starting.add(id);
    try {
      await this.sleep(this.latency(behavior.startLatencyMs));
      if (behavior.startError) throw new StartError(`start ${id}: ${behavior.startError.message}`, behavior.startError.recoverable ?? true);
    } finally {
      this.starting.delete(id);
    }
    const n = this.nextAddress++;
    const c: HollowContainer = {
      spec,
      behavior,
      pid: this.nextPid++,
      address: `${this.prefix}.${(n >> 8) & 255}.${n & 255}`,
      startedAt: this.clock.now(),
      exit: null,
      waiters: [],
      timers: [],
      log: [],
      logListeners: new Set(),
    };
    this.containers.set(id, c);
    for (const line of behavior.logLines ?? []) this.appendLog(c, line);
    if (behavior.exit) {
      const { afterMs, code, oomKilled } = behavior.exit;
      c.timers.push(this.clock.setTimeout(() => this.finish(c, code, oomKilled ?? false), afterMs));
    }
    return this.handle(c);
  }

  async wait(id: string): Promise<ExitResult> {
    const c = this.get(id);
    if (c.exit) return Promise.resolve(c.exit);
    return new Promise((resolve) => c.waiters.push(resolve));
  }

  async stop(id: string, opts: StopOptions = {}): Promise<ExitResult> {
    const c = this.get(id);
    if (c.exit) return c.exit;
    const signal = opts.signal ?? 'SIGTERM';
    const exited = this.wait(id);
    if (signal === 'SIGKILL') {
      this.finish(c, 137, false);
      return exited;
    }
    const reaction = c.behavior.onSignal ?? { action: 'exit', code: 128 + signalNumber(signal), afterMs: 0 };
    if (reaction.action === 'exit') c.timers.push(this.clock.setTimeout(() => this.finish(c, reaction.code, false), reaction.afterMs ?? 0));
    const t = this.clock.setTimeout(() => this.finish(c, 137, false), opts.timeoutMs ?? 10_000);
    c.timers.push(t);
    return exited;
  }

  async destroy(id: string): Promise<void> {
    const c = this.get(id);
    if (!c.exit) this.finish(c, 137, false);
    this.containers.delete(id);
  }

  async inspect(id: string): Promise<ContainerInfo> {
    const c = this.get(id);
    return {
      id,
      status: c.exit ? 'stopped' : 'running',
      pid: c.pid,
      address: c.address,
      startedAt: new Date(c.startedAt),
      exit: c.exit,
      annotations: c.spec.annotations ?? {},
    };
  }

  async list(): Promise<ContainerInfo[]> {
    return Promise.all([...this.containers.keys()].sort().map((id) => this.inspect(id)));
  }

  /** Containers live in this object, so they "outlive" any supervisor that used it. */
  async recover(id: string): Promise<ContainerHandle> {
    return this.handle(this.get(id));
  }

  logs(id: string): ContainerLogReader {
    assertValidId(id);
    const rt = this;
    return {
      async tail(n: number) {
        const c = rt.containers.get(id);
        if (!c) throw new ContainerNotFoundError(id);
        return n === 0 ? [] : c.log.slice(-n);
      },
      follow(signal: AbortSignal, opts: { fromStart?: boolean } = {}) {
        const c = rt.containers.get(id);
        if (!c) throw new ContainerNotFoundError(id);
        let pos = opts.fromStart ? 0 : c.log.length; // fixed now, not when iteration begins
        return (async function* () {
          while (!signal.aborted) {
            while (pos < c.log.length) yield c.log[pos++];
            if (signal.aborted) break;
            await new Promise<void>((resolve) => {
              const wake = () => {
                c.logListeners.delete(wake);
                signal.removeEventListener('abort', wake);
                resolve();
              };
              c.logListeners.add(wake);
              signal.addEventListener('abort', wake, { once: true });
            });
          }
        })();
      },
    };
  }

  /** Answers probes as the simulated app would: refused unless running and ready. */
  probeDialer(): ProbeDialer {
    const check = (host: string) => {
      const c = [...this.containers.values()].find((x) => x.address === host && !x.exit);
      if (!c) throw Object.assign(new Error(`connect ECONNREFUSED ${host}`), { code: 'ECONNREFUSED' });
      const age = this.clock.now() - c.startedAt;
      const ready = c.behavior.ready ?? 'immediately';
      const up = ready === 'immediately' ? true : ready === 'never' ? false : age >= ready.afterMs;
      const hung = c.behavior.unhealthyAfterMs !== undefined && age >= c.behavior.unhealthyAfterMs;
      if (!up || hung) throw Object.assign(new Error(`connect ECONNREFUSED ${host}`), { code: 'ECONNREFUSED' });
    };
    return {
      httpGet: async (host) => {
        check(host);
        return 200;
      },
      tcpConnect: async (host) => {
        check(host);
      },
    };
  }

  /** Writes a line to a container's log (what the simulated app prints). */
  writeLog(id: string, line: string): void {
    this.appendLog(this.get(id), line);
  }

  private appendLog(c: HollowContainer, line: string) {
    c.log.push(line);
    for (const l of [...c.logListeners]) l();
  }

  private finish(c: HollowContainer, code: number, oomKilled: boolean) {
    if (c.exit) return;
    for (const t of c.timers) this.clock.clearTimeout(t);
    c.timers = [];
    c.exit = { code, signal: code > 128 ? (SIGNAL_NAMES[code - 128] ?? null) : null, oomKilled, exitedAt: new Date(this.clock.now()) };
    const waiters = c.waiters;
    c.waiters = [];
    for (const w of waiters) w(c.exit);
  }

  private get(id: string): HollowContainer {
    assertValidId(id);
    const c = this.containers.get(id);
    if (!c) throw new ContainerNotFoundError(id);
    return c;
  }

  private handle(c: HollowContainer): ContainerHandle {
    return { id: c.spec.id, pid: c.pid, address: c.address, startedAt: new Date(c.startedAt) };
  }

  private latency(l: HollowBehavior['startLatencyMs']): number {
    if (l === undefined) return 0;
    if (typeof l === 'number') return l;
    return l.min + Math.floor(this.random() * (l.max - l.min + 1));
  }

  private sleep(ms: number): Promise<void> {
    if (ms <= 0) return Promise.resolve();
    return new Promise((r) => this.clock.setTimeout(r, ms));
  }
}

function signalNumber(signal: string): number {
  const n = Object.entries(SIGNAL_NAMES).find(([, name]) => name === signal);
  return n ? Number(n[0]) : 15;
}
