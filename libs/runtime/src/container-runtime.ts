/**
 * ContainerRuntime: the narrow port through which the agent runs containers (Nomad's driver
 * interface is the model). Every implementation passes the suite in `conformance.ts`.
 *
 * Vocabulary
 * - container: one run of one process tree from a ContainerSpec, named by `id` (unique on the node).
 *   A container is either `running` or `stopped` (its process tree is gone, its resources remain).
 * - handle: what `start`/`recover` return: id, init pid, network address, start time.
 * - exit result: how the process tree ended: exit `code` (128+n when killed by signal n, as a
 *   shell reports it), `signal` (name, when killed by one), `oomKilled` (the kernel's OOM killer
 *   fired inside the container's memory cgroup).
 * - resources: everything a container holds on the node: its runtime state, cgroups, network
 *   namespace + address lease, bundle directory, rootfs mounts, log files.
 *
 * Lifecycle
 *   start(spec) ──► running ──(process ends | stop())──► stopped ──destroy()──► gone
 * - `start` creates and starts in one step and resolves once the process runs; a start that fails
 *   leaves nothing behind and rejects with `StartError`.
 * - `wait` resolves with the exit result once the container is stopped (immediately if it already is);
 *   any number of callers may wait.
 * - `stop` sends `signal` (SIGTERM), waits `timeoutMs`, then SIGKILLs; resolves with the exit result.
 *   Stopping a stopped container is a no-op.
 * - `destroy` kills if needed and releases every resource; afterwards the id is unknown and may be
 *   reused. `keepLogs` keeps the log files so a restarted container with the same id appends to them.
 * - Containers outlive the process that started them: after that process dies, a new one calls
 *   `list()` and `recover(id)` to get handles again; `wait`/`stop`/`destroy` then work as before.
 * Unknown ids reject with `ContainerNotFoundError`; a second `start` of a live id with `ContainerExistsError`.
 */
export interface ContainerRuntime {
  readonly name: string;
  start(spec: ContainerSpec): Promise<ContainerHandle>;
  wait(id: string): Promise<ExitResult>;
  stop(id: string, opts?: StopOptions): Promise<ExitResult>;
  destroy(id: string, opts?: { keepLogs?: boolean }): Promise<void>;
  inspect(id: string): Promise<ContainerInfo>;
  list(): Promise<ContainerInfo[]>;
  recover(id: string): Promise<ContainerHandle>;
  /** The container's combined stdout+stderr. */
  logs(id: string): ContainerLogReader;
}

export interface ContainerLogReader {
  /** The last `n` lines (oldest first), across rotated files. */
  tail(n: number): Promise<string[]>;
  /** Lines as they are written, starting after the current end (or at the start of the current file), until `signal` aborts. */
  follow(signal: AbortSignal, opts?: { fromStart?: boolean }): AsyncIterable<string>;
}

/** A mount to perform onto the bundle's rootfs, as a snapshotter describes it (containerd style). */
export interface RootfsMount {
  type: string;
  source: string;
  options: string[];
}

/** The `config` section of an OCI image configuration (only what a runtime uses). */
export interface ImageConfig {
  Entrypoint?: string[] | null;
  Cmd?: string[] | null;
  Env?: string[] | null;
  WorkingDir?: string;
  User?: string;
  ExposedPorts?: Record<string, object> | null;
}

export interface ContainerResources {
  /** CPU in thousandths of a core (1000 = one core). */
  cpuMillis: number;
  memoryMiB: number;
  pids: number;
}

export interface ContainerSpec {
  /** [A-Za-z0-9][A-Za-z0-9_.-]{0,62}: used in file, netns and cgroup names. */
  id: string;
  /** A prepared directory (caller owns it), or mounts the runtime performs and undoes in destroy. */
  rootfs: { path: string } | { mounts: RootfsMount[] };
  image: ImageConfig;
  /** Replaces Entrypoint+Cmd entirely when set. */
  command?: string[] | null;
  env?: Record<string, string>;
  /** The service port; exported as PORT like Cloud Run does. */
  port?: number;
  resources: ContainerResources;
  hostname?: string;
  readOnlyRootfs?: boolean;
  /** `uid[:gid]` numeric, or a user (and group) name looked up in the rootfs /etc/passwd, /etc/group. */
  user?: string | null;
  annotations?: Record<string, string>;
}

export interface ContainerHandle {
  id: string;
  pid: number;
  /** IPv4 address inside the node's container network, null without networking. */
  address: string | null;
  startedAt: Date;
}

export interface ExitResult {
  code: number;
  signal: string | null;
  oomKilled: boolean;
  exitedAt: Date;
  /** Set when the process vanished without a recorded exit (e.g. the host rebooted). */
  lost?: boolean;
}

export interface StopOptions {
  signal?: NodeJS.Signals;
  /** Grace period before SIGKILL. */
  timeoutMs?: number;
}

export type ContainerStatus = 'running' | 'stopped';

export interface ContainerInfo {
  id: string;
  status: ContainerStatus;
  pid: number;
  address: string | null;
  startedAt: Date;
  exit: ExitResult | null;
  annotations: Record<string, string>;
}

export class ContainerNotFoundError extends Error {
  readonly code = 'CONTAINER_NOT_FOUND';
  constructor(readonly id: string) {
    super(`container ${JSON.stringify(id)} not found`);
    this.name = 'ContainerNotFoundError';
  }
}

export class ContainerExistsError extends Error {
  readonly code = 'CONTAINER_EXISTS';
  constructor(readonly id: string) {
    super(`container ${JSON.stringify(id)} already exists`);
    this.name = 'ContainerExistsError';
  }
}

/** A container that could not be started; `recoverable` is false when retrying cannot help (bad spec). */
export class StartError extends Error {
  readonly code = 'START_FAILED';
  constructor(
    message: string,
    readonly recoverable: boolean,
  ) {
    super(message);
    this.name = 'StartError';
  }
}

export class InvalidSpecError extends StartError {
  constructor(message: string) {
    super(message, false);
    this.name = 'InvalidSpecError';
  }
}

const ID_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
export function assertValidId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !ID_RE.test(id)) {
    throw new InvalidSpecError(`container id ${JSON.stringify(id)} must match ${ID_RE.source}`);
  }
}

/** Signal numbers on Linux x86-64/arm64 for the signals a runtime reports. */
export const SIGNAL_NAMES: Record<number, NodeJS.Signals> = {
  1: 'SIGHUP',
  2: 'SIGINT',
  3: 'SIGQUIT',
  4: 'SIGILL',
  6: 'SIGABRT',
  7: 'SIGBUS',
  8: 'SIGFPE',
  9: 'SIGKILL',
  10: 'SIGUSR1',
  11: 'SIGSEGV',
  12: 'SIGUSR2',
  13: 'SIGPIPE',
  14: 'SIGALRM',
  15: 'SIGTERM',
};

/** Shell convention: a status above 128 means "killed by signal status-128". */
export function signalFromStatus(code: number): string | null {
  return code > 128 && code - 128 in SIGNAL_NAMES ? SIGNAL_NAMES[code - 128] : null;
}
