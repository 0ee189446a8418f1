/**
 * ContainerRuntime on runc (cgroup v1 or v2; cgroupfs or systemd driver, see cgroups.ts: runc or
 * systemd write the cgroups; Berth reads OOM counters and stats, freezes through `runc pause`).
 *
 * Each container runs under a tiny detached shell "shim" (its own session, so it survives the agent):
 *   sh: runc run --keep --pid-file <dir>/pid <id>  >> output.log 2>&1 ; write <dir>/exit.json
 * Foreground `runc run` is the container's parent and reaper, so its exit status is the container's
 * (128+n for signal n); `--keep` leaves the stopped container and its cgroup in place, so the shim
 * can read the memory cgroup's `oom_kill` counter after the exit, before `destroy` runs `runc delete`.
 * Because state lives in files (record.json, pid, exit.json) and runc's root, a restarted agent
 * recovers every container by reading them; nothing is kept only in memory.
 *
 * On-disk layout (stateDir, default /var/lib/berth/runtime):
 *   containers/<id>/record.json   what start decided (address, mounts, cgroups path, shim pid)
 *   containers/<id>/bundle/       OCI bundle: config.json + rootfs/ (mount point when the runtime mounts)
 *   containers/<id>/pid           container init pid (written by runc once started)
 *   containers/<id>/exit.json     {code, oomKills} (written by the shim when runc returns)
 *   logs/<id>/output.log[.1 .2]   combined stdout+stderr, copy-truncate rotation
 */
import { spawn } from 'node:child_process';
import { existsSync, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { CniNetwork } from './cni';
import { DEFAULT_ROTATION, RotatingLogFile, RotationOptions } from './container-log';
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
  InvalidSpecError,
  signalFromStatus,
  StartError,
  StopOptions,
} from './container-runtime';
import { execFile } from '@berth/oci';
import { buildOciSpec, resolveUser } from './oci-spec';
import {
  CGROUP_DRIVER_ENV,
  CgroupDriver,
  cgroupLayout,
  CgroupLayout,
  CgroupStats,
  hostCgroupFacts,
  readCgroupStats,
  selectCgroupDriver,
  SYSTEMD_SCOPE_PREFIX,
} from './cgroups';
import { classifyStartFailure, describeStartFailure } from './start-failure';

export interface RuncRuntimeOptions {
  stateDir?: string;
  /** runc --root: where runc keeps its own state (tmpfs is fine: exit facts live in stateDir). */
  runcRoot?: string;
  runcPath?: string;
  /**
   * Parent of every container cgroup: `<cgroupParent>/<id>` with the cgroupfs driver; with the
   * systemd driver the slice made from it (`/berth/n1` → `berth-n1.slice`) holds `berth-<id>.scope`.
   */
  cgroupParent?: string;
  /** Default: BERTH_CGROUP_DRIVER, else systemd when systemd is PID 1 (/run/systemd/system) on cgroup v2, else cgroupfs. */
  cgroupDriver?: CgroupDriver;
  /** null runs containers without networking (a fresh, empty network namespace). */
  network?: CniNetwork | null;
  logRotation?: RotationOptions;
  /** How often logs are checked for rotation; 0 disables the timer (call rotateLogs yourself). */
  rotateIntervalMs?: number;
  startTimeoutMs?: number;
  seccomp?: boolean;
  /**
   * false (default): CNI attaches eth0 while runc starts the process, saving the ~30 ms of the
   * plugins; the process may run for those few ms before eth0 has its address (servers binding
   * 0.0.0.0 do not notice). true: attach first, start after, for apps that dial out at once.
   */
  attachBeforeStart?: boolean;
}

interface ContainerRecord {
  id: string;
  createdAt: string;
  cgroupsPath: string;
  address: string | null;
  networked: boolean;
  mounted: boolean;
  shimPid: number;
  annotations: Record<string, string>;
}

interface ExitFile {
  code: number;
  oomKills?: number;
  lost?: boolean;
}

const SHIM_SCRIPT = [
  '"$1" --root "$2" $8 run --keep --bundle "$4" --pid-file "$5/pid" "$3" </dev/null >>"$6" 2>&1',
  'code=$?',
  'oom=0',
  'if [ -r "$7" ]; then oom=$(sed -n "s/^oom_kill //p" "$7"); fi',
  'printf \'{"code":%s,"oomKills":%s}\\n\' "$code" "${oom:-0}" >"$5/exit.json.tmp" && mv "$5/exit.json.tmp" "$5/exit.json"',
].join('\n');
const SHIM_NAME = 'berth-shim';

export class RuncRuntime implements ContainerRuntime {
  readonly name = 'runc';
  readonly stateDir: string;
  readonly runcRoot: string;
  readonly runcPath: string;
  readonly cgroupParent: string;
  readonly cgroupDriver: CgroupDriver;
  /** Where container cgroups live under each hierarchy root, for the driver in use. */
  readonly cgroups: CgroupLayout;
  readonly network: CniNetwork | null;
  private readonly rotation: RotationOptions;
  private readonly startTimeoutMs: number;
  private readonly seccomp: boolean;
  private readonly attachBeforeStart: boolean;
  private rotateTimer: NodeJS.Timeout | null = null;
  readonly cgroupV2 = existsSync('/sys/fs/cgroup/cgroup.controllers');

  constructor(opts: RuncRuntimeOptions = {}) {
    this.stateDir = opts.stateDir ?? '/var/lib/berth/runtime';
    this.runcRoot = opts.runcRoot ?? '/run/berth/runc';
    this.runcPath = opts.runcPath ?? 'runc';
    this.cgroupParent = (opts.cgroupParent ?? '/berth').replace(/\/+$/, '');
    const host = hostCgroupFacts(existsSync);
    this.cgroupDriver = opts.cgroupDriver ?? selectCgroupDriver(process.env[CGROUP_DRIVER_ENV], host.systemdBooted, host.cgroupV2);
    this.cgroups = cgroupLayout(this.cgroupDriver, this.cgroupParent);
    this.network = opts.network === undefined ? null : opts.network;
    this.rotation = opts.logRotation ?? DEFAULT_ROTATION;
    this.startTimeoutMs = opts.startTimeoutMs ?? 30_000;
    this.seccomp = opts.seccomp ?? true;
    this.attachBeforeStart = opts.attachBeforeStart ?? false;
    const every = opts.rotateIntervalMs ?? 10_000;
    if (every > 0) {
      this.rotateTimer = setInterval(() => void this.rotateLogs().catch(() => undefined), every);
      this.rotateTimer.unref();
    }
  }

  /** Stops background log rotation; containers keep running. */
  close(): void {
    if (this.rotateTimer) clearInterval(this.rotateTimer);
    this.rotateTimer = null;
  }

  private dir(id: string) {
    return join(this.stateDir, 'containers', id);
  }
  private bundle(id: string) {
    return join(this.dir(id), 'bundle');
  }
  private logDir(id: string) {
    return join(this.stateDir, 'logs', id);
  }
  private logPath(id: string) {
    return join(this.logDir(id), 'output.log');
  }
  /** runc's global flags: its state root, and the systemd driver when that is the one in use. */
  private runcArgs(...args: string[]): string[] {
    return ['--root', this.runcRoot, ...(this.cgroupDriver === 'systemd' ? ['--systemd-cgroup'] : []), ...args];
  }
  private runc(...args: string[]) {
    return execFile(this.runcPath, this.runcArgs(...args));
  }
  /** The container's cgroup directory in the hierarchy of `controller` ('' on v2). */
  cgroupDir(id: string, controller = ''): string {
    return this.cgroupV2 ? join('/sys/fs/cgroup', this.cgroups.relPath(id)) : join('/sys/fs/cgroup', controller, this.cgroups.relPath(id));
  }
  /** The file whose `oom_kill N` line counts OOM kills in the container's memory cgroup. */
  private oomEventsFile(id: string) {
    return this.cgroupV2
      ? join('/sys/fs/cgroup', this.cgroups.oomDir(id), 'memory.events')
      : join('/sys/fs/cgroup/memory', this.cgroups.oomDir(id), 'memory.oom_control');
  }

  async start(spec: ContainerSpec): Promise<ContainerHandle> {
    assertValidId(spec?.id);
    const id = spec.id;
    if (!spec.rootfs || (!('path' in spec.rootfs) && !('mounts' in spec.rootfs))) {
      throw new InvalidSpecError('rootfs must be {path} or {mounts}');
    }
    const dir = this.dir(id);
    try {
      await fs.mkdir(dir, { recursive: false });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw new ContainerExistsError(id);
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') {
        await fs.mkdir(join(this.stateDir, 'containers'), { recursive: true });
        return this.start(spec);
      }
      throw e;
    }
    const record: ContainerRecord = {
      id,
      createdAt: new Date().toISOString(),
      cgroupsPath: this.cgroups.cgroupsPath(id),
      address: null,
      networked: false,
      mounted: false,
      shimPid: 0,
      annotations: spec.annotations ?? {},
    };
    try {
      const bundle = this.bundle(id);
      const rootfsPath = 'mounts' in spec.rootfs ? join(bundle, 'rootfs') : spec.rootfs.path;
      const userSpec = spec.user ?? spec.image?.User ?? null;
      // Build (and so validate) the spec before touching mounts or the network; the user is resolved
      // against the image's /etc/passwd once the rootfs is there.
      buildOciSpec({ spec, rootfsPath, netnsPath: null, cgroupsPath: record.cgroupsPath, user: { uid: 0, gid: 0 }, seccomp: this.seccomp });
      await fs.mkdir(bundle);
      await fs.mkdir(this.logDir(id), { recursive: true });
      if ('mounts' in spec.rootfs) await fs.mkdir(rootfsPath);
      // Recorded before mounting and before the namespace exists, so a crash mid-way is still cleaned up.
      record.mounted = 'mounts' in spec.rootfs;
      record.networked = this.network !== null;
      await this.writeRecord(record);
      // The rootfs mount and the network namespace do not depend on each other; each is a process
      // spawn of tens of milliseconds, so they run side by side. Both settle before anything else.
      const [mounted, namespace] = await Promise.allSettled([
        (async () => {
          if (!('mounts' in spec.rootfs)) {
            if (!(await isDir(rootfsPath))) throw new InvalidSpecError(`rootfs ${rootfsPath} is not a directory`);
            return;
          }
          for (const m of spec.rootfs.mounts) await mountOne(m, rootfsPath);
        })(),
        this.network ? this.network.createNamespace(id) : Promise.resolve(null),
      ]);
      if (mounted.status === 'rejected') throw mounted.reason;
      if (namespace.status === 'rejected') throw namespace.reason;
      const user = userSpec
        ? resolveUser(userSpec, await readIfExists(join(rootfsPath, 'etc/passwd')), await readIfExists(join(rootfsPath, 'etc/group')))
        : { uid: 0, gid: 0 };
      const draft = buildOciSpec({ spec, rootfsPath, netnsPath: null, cgroupsPath: record.cgroupsPath, user, seccomp: this.seccomp });
      let attaching: Promise<unknown> = Promise.resolve();
      const ns = namespace.value;
      if (this.network && ns) {
        draft.linux.namespaces = draft.linux.namespaces.map((n) => (n.type === 'network' ? { type: 'network', path: ns.netnsPath } : n));
        const attach = this.network.attach(id).then((att) => (record.address = att.address));
        attach.catch(() => undefined); // observed below; this only keeps an early failure from counting as unhandled
        if (this.attachBeforeStart) await attach;
        else attaching = attach;
      }
      await fs.writeFile(join(bundle, 'config.json'), JSON.stringify(draft));
      const shim = spawn(
        '/bin/sh',
        [
          '-c',
          SHIM_SCRIPT,
          SHIM_NAME,
          this.runcPath,
          this.runcRoot,
          id,
          bundle,
          dir,
          this.logPath(id),
          this.oomEventsFile(id),
          this.cgroupDriver === 'systemd' ? '--systemd-cgroup' : '',
        ],
        { detached: true, stdio: 'ignore' },
      );
      shim.unref();
      record.shimPid = shim.pid ?? 0;
      await this.writeRecord(record);
      // Both must finish before start resolves; a failure of either tears everything down below.
      const [started, attached] = await Promise.allSettled([this.awaitStarted(id), attaching]);
      if (attached.status === 'rejected') throw attached.reason;
      if (started.status === 'rejected') throw started.reason;
      const pid = started.value;
      await this.writeRecord(record);
      return { id, pid, address: record.address, startedAt: new Date() };
    } catch (e) {
      await this.release(id, { keepLogs: false, record }).catch(() => undefined);
      if (e instanceof StartError) throw e;
      throw new StartError(`start ${id}: ${(e as Error).message}`, true);
    }
  }

  /** Resolves with the init pid once runc has started the process; rejects with runc's error if it could not. */
  private async awaitStarted(id: string): Promise<number> {
    const deadline = Date.now() + this.startTimeoutMs;
    const pidFile = join(this.dir(id), 'pid');
    const exitFile = join(this.dir(id), 'exit.json');
    for (let i = 0; ; i++) {
      const pid = await readIfExists(pidFile);
      if (pid && /^\d+\s*$/.test(pid)) return Number(pid);
      if (existsSync(exitFile)) {
        // The container may have started and already ended between the two reads: runc writes the
        // pid file before it waits, so a pid now means it did start.
        const late = await readIfExists(pidFile);
        if (late && /^\d+\s*$/.test(late)) return Number(late);
        const out = (await this.logs(id).tail(20)).filter((l) => /level=error|runc/.test(l));
        const message = out.map(cleanRuncError).join('; ') || 'runc exited before the container started';
        // A missing executable or bad user will not get better on retry (see classifyStartFailure).
        const failure = classifyStartFailure({ message });
        throw new StartError(`start ${id}: ${describeStartFailure(failure, message)}`, !failure.permanent);
      }
      if (Date.now() > deadline) throw new StartError(`start ${id}: runc did not start the container within ${this.startTimeoutMs} ms`, true);
      await delay(i < 200 ? 2 : 20);
    }
  }

  async wait(id: string): Promise<ExitResult> {
    await this.readRecord(id);
    for (let i = 0; ; i++) {
      const exit = await this.readExit(id);
      if (exit) return exit;
      // Every ~second make sure someone is still going to write exit.json.
      if (i % 40 === 39 && !(await this.shimAlive(id))) {
        const again = await this.readExit(id);
        if (again) return again;
        return this.markLost(id);
      }
      await delay(25);
    }
  }

  async stop(id: string, opts: StopOptions = {}): Promise<ExitResult> {
    await this.readRecord(id);
    const done = await this.readExit(id);
    if (done) return done;
    const timeoutMs = opts.timeoutMs ?? 10_000;
    await this.kill(id, opts.signal ?? 'SIGTERM');
    const exited = this.wait(id);
    const first = await Promise.race([exited, delay(timeoutMs).then(() => null)]);
    if (first) return first;
    await this.kill(id, 'SIGKILL');
    return exited;
  }

  private async kill(id: string, signal: string): Promise<void> {
    // Errors mean "not running any more", which is what we want anyway.
    await this.runc('kill', id, signal.replace(/^SIG/, ''));
    // A frozen process gets the signal only once thawed (v1: not even SIGKILL).
    if (await this.isFrozen(id)) await this.runc('resume', id);
  }

  private async isFrozen(id: string): Promise<boolean> {
    if (this.cgroupV2) return /^frozen 1$/m.test((await readIfExists(join(this.cgroupDir(id), 'cgroup.events')).catch(() => null)) ?? '');
    return ((await readIfExists(join(this.cgroupDir(id, 'freezer'), 'freezer.state')).catch(() => null)) ?? '').trim() === 'FROZEN';
  }

  async destroy(id: string, opts: { keepLogs?: boolean } = {}): Promise<void> {
    assertValidId(id);
    const record = await this.readRecord(id);
    await this.release(id, { keepLogs: opts.keepLogs === true, record });
  }

  /** Best-effort teardown of everything `id` may hold; each step tolerates "already gone". */
  private async release(id: string, { keepLogs, record }: { keepLogs: boolean; record: ContainerRecord | null }): Promise<void> {
    const errors: string[] = [];
    const step = async (what: string, fn: () => Promise<unknown>) => {
      try {
        await fn();
      } catch (e) {
        errors.push(`${what}: ${(e as Error).message}`);
      }
    };
    if (record?.shimPid && !(await this.readExit(id)) && (await this.shimAlive(id, record))) {
      await this.kill(id, 'SIGKILL');
      const deadline = Date.now() + 10_000;
      while (Date.now() < deadline && (await this.shimAlive(id, record)) && !(await this.readExit(id))) await delay(10);
    }
    await step('runc delete', async () => {
      const r = await this.runc('delete', '--force', id);
      if (r.code !== 0 && !/does not exist|not exist/.test(r.stderr)) throw new Error(r.stderr.trim());
    });
    if (this.network && (record?.networked ?? true)) await step('network', () => this.network!.del(id));
    const rootfs = join(this.bundle(id), 'rootfs');
    if (record?.mounted || (await isMountPoint(rootfs))) await step('unmount', () => unmountAll(rootfs));
    await step('cgroups', () => this.removeCgroups(id));
    await step('state dir', () => fs.rm(this.dir(id), { recursive: true, force: true }));
    if (!keepLogs) await step('logs', () => fs.rm(this.logDir(id), { recursive: true, force: true }));
    if (errors.length) throw new Error(`destroy ${id}: ${errors.join('; ')}`);
  }

  /**
   * runc delete removes the cgroups (systemd: stops the scope); this catches the ones left by a runc
   * that died half-way. The driver is a node setting: containers started under another driver are
   * not looked for.
   */
  private async removeCgroups(id: string): Promise<void> {
    const rel = this.cgroups.relPath(id);
    const units = this.cgroups.units(id);
    // systemd: the container's slice outlives its scope (it holds the OOM count); stopping it removes both.
    if (units.length) await execFile('systemctl', ['stop', ...units]);
    for (const root of await this.cgroupRoots()) {
      for (const dir of [rel, ...(rel === this.cgroups.oomDir(id) ? [] : [this.cgroups.oomDir(id)])]) await this.removeCgroupDir(id, join(root, dir));
    }
  }

  /** Kills what is left in one cgroup directory and removes it (EBUSY while the kernel reaps: retried). */
  private async removeCgroupDir(id: string, p: string): Promise<void> {
    if (!existsSync(p)) return;
    const procs = (await readIfExists(join(p, 'cgroup.procs'))) ?? '';
    for (const pid of procs.split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        /* already gone */
      }
    }
    if (this.cgroupDriver === 'systemd') await execFile('systemctl', ['stop', `${SYSTEMD_SCOPE_PREFIX}-${id}.scope`]);
    for (let i = 0; i < 50; i++) {
      try {
        await fs.rmdir(p);
        return;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return;
        if (code !== 'EBUSY' || i === 49) throw e;
        await delay(20);
      }
    }
  }

  /** Every hierarchy root a container cgroup may live in (v1: one per controller mount; v2: one). */
  async cgroupRoots(): Promise<string[]> {
    if (this.cgroupV2) return ['/sys/fs/cgroup'];
    const out: string[] = [];
    for (const e of await fs.readdir('/sys/fs/cgroup', { withFileTypes: true })) {
      if (e.isDirectory()) out.push(join('/sys/fs/cgroup', e.name));
    }
    return out;
  }

  /**
   * Freezes every process of the container (`runc pause`: cgroup.freeze on v2, the freezer
   * controller on v1); `thaw` lets them run again. A frozen container ignores signals until thawed;
   * `stop` and `destroy` thaw first.
   */
  async freeze(id: string): Promise<void> {
    await this.readRecord(id);
    const r = await this.runc('pause', id);
    if (r.code !== 0) throw new Error(`freeze ${id}: ${cleanRuncError(r.stderr.trim())}`);
  }

  async thaw(id: string): Promise<void> {
    await this.readRecord(id);
    const r = await this.runc('resume', id);
    if (r.code !== 0) throw new Error(`thaw ${id}: ${cleanRuncError(r.stderr.trim())}`);
  }

  /** Usage and limits from the container's cgroup files (v1 or v2, either driver). */
  async stats(id: string): Promise<CgroupStats> {
    await this.readRecord(id);
    return readCgroupStats(this.cgroupV2, (controller, file) => readIfExists(join(this.cgroupDir(id, controller), file)));
  }

  /** Removes the (empty) parent of the container cgroups: the directories, or the systemd slice. */
  async removeCgroupParent(): Promise<void> {
    if (this.cgroups.slice) await execFile('systemctl', ['stop', this.cgroups.slice]);
    for (const root of await this.cgroupRoots()) await fs.rmdir(join(root, this.cgroups.parentPath)).catch(() => undefined);
  }

  async inspect(id: string): Promise<ContainerInfo> {
    const record = await this.readRecord(id);
    const pid = Number((await readIfExists(join(this.dir(id), 'pid'))) ?? 0);
    let exit = await this.readExit(id);
    if (!exit && !(await this.shimAlive(id, record))) exit = (await this.readExit(id)) ?? (await this.markLost(id));
    const startedAt = await fs
      .stat(join(this.dir(id), 'pid'))
      .then((s) => s.mtime)
      .catch(() => new Date(record.createdAt));
    return {
      id,
      status: exit ? 'stopped' : 'running',
      pid,
      address: record.address,
      startedAt,
      exit,
      annotations: record.annotations,
    };
  }

  async list(): Promise<ContainerInfo[]> {
    const ids = await fs.readdir(join(this.stateDir, 'containers')).catch(() => [] as string[]);
    const out: ContainerInfo[] = [];
    for (const id of ids.sort()) {
      try {
        out.push(await this.inspect(id));
      } catch (e) {
        if (!(e instanceof ContainerNotFoundError)) throw e;
      }
    }
    return out;
  }

  async recover(id: string): Promise<ContainerHandle> {
    const info = await this.inspect(id);
    if (info.status === 'running') {
      // Cross-check with runc's own view: the pid it reports must be the one we recorded.
      const r = await this.runc('state', id);
      if (r.code === 0) {
        const state = JSON.parse(r.stdout) as { pid: number; status: string };
        if (state.status === 'running' && info.pid && state.pid !== info.pid) {
          throw new Error(`recover ${id}: runc reports pid ${state.pid}, record says ${info.pid}`);
        }
      }
    }
    return { id, pid: info.pid, address: info.address, startedAt: info.startedAt };
  }

  logs(id: string): ContainerLogReader {
    assertValidId(id);
    return new RotatingLogFile(this.logPath(id), this.rotation);
  }

  /** Rotates every container's log that grew past the limit. */
  async rotateLogs(): Promise<void> {
    const ids = await fs.readdir(join(this.stateDir, 'logs')).catch(() => [] as string[]);
    for (const id of ids) await new RotatingLogFile(this.logPath(id), this.rotation).rotateIfNeeded().catch(() => undefined);
  }

  /**
   * Removes leftovers of containers whose record is gone (agent crashed mid-start or mid-destroy),
   * and of containers `keep` rejects: runc state, cgroups, network namespaces, address leases,
   * rootfs mounts, bundle and log directories. Returns the ids it cleaned.
   */
  async gc(keep: (id: string) => boolean = () => true): Promise<string[]> {
    const candidates = new Set<string>();
    const recorded = new Set<string>();
    for (const id of await fs.readdir(join(this.stateDir, 'containers')).catch(() => [] as string[])) {
      candidates.add(id);
      if (existsSync(join(this.dir(id), 'record.json'))) recorded.add(id);
    }
    for (const id of await fs.readdir(join(this.stateDir, 'logs')).catch(() => [] as string[])) candidates.add(id);
    const listed = await this.runc('list', '--format', 'json');
    if (listed.code === 0 && listed.stdout.trim() && listed.stdout.trim() !== 'null') {
      for (const c of JSON.parse(listed.stdout) as { id: string }[]) candidates.add(c.id);
    }
    if (this.network) {
      for (const id of await this.network.listNamespaces()) candidates.add(id);
      for (const l of await this.network.listLeases()) if (l.id) candidates.add(l.id);
    }
    for (const root of await this.cgroupRoots()) {
      for (const e of await fs.readdir(join(root, this.cgroups.parentPath), { withFileTypes: true }).catch(() => [])) {
        const id = e.isDirectory() ? this.cgroups.idOf(e.name) : null;
        if (id) candidates.add(id);
      }
    }
    const removed: string[] = [];
    for (const id of [...candidates].sort()) {
      if (recorded.has(id) && keep(id)) continue;
      try {
        assertValidId(id);
      } catch {
        continue;
      }
      await this.release(id, { keepLogs: false, record: null }).catch(() => undefined);
      removed.push(id);
    }
    return removed;
  }

  private async writeRecord(r: ContainerRecord): Promise<void> {
    const p = join(this.dir(r.id), 'record.json');
    await fs.writeFile(`${p}.tmp`, JSON.stringify(r));
    await fs.rename(`${p}.tmp`, p);
  }

  private async readRecord(id: string): Promise<ContainerRecord> {
    assertValidId(id);
    const text = await readIfExists(join(this.dir(id), 'record.json'));
    if (!text) throw new ContainerNotFoundError(id);
    return JSON.parse(text) as ContainerRecord;
  }

  private async readExit(id: string): Promise<ExitResult | null> {
    const p = join(this.dir(id), 'exit.json');
    let text: string | null;
    let mtime: Date;
    try {
      [text, mtime] = await Promise.all([fs.readFile(p, 'utf8'), fs.stat(p).then((s) => s.mtime)]);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    const f = JSON.parse(text) as ExitFile;
    const result: ExitResult = { code: f.code, signal: signalFromStatus(f.code), oomKilled: (f.oomKills ?? 0) > 0, exitedAt: mtime };
    if (f.lost) result.lost = true;
    return result;
  }

  /** The shim is gone without writing exit.json (host reboot, someone killed it): record that. */
  private async markLost(id: string): Promise<ExitResult> {
    const p = join(this.dir(id), 'exit.json');
    await fs.writeFile(`${p}.tmp`, JSON.stringify({ code: 255, oomKills: 0, lost: true }));
    await fs.rename(`${p}.tmp`, p);
    return (await this.readExit(id))!;
  }

  private async shimAlive(id: string, record?: ContainerRecord): Promise<boolean> {
    const r = record ?? (await this.readRecord(id));
    if (!r.shimPid) return false;
    // The pid alone could have been reused after a reboot; the command line names the shim and id.
    const cmdline = await readIfExists(`/proc/${r.shimPid}/cmdline`);
    if (!cmdline) return false;
    const argv = cmdline.split('\0');
    return argv.includes(SHIM_NAME) && argv.includes(id);
  }
}

function cleanRuncError(line: string): string {
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(line);
  return m ? m[1].replace(/\\"/g, '"') : line.trim();
}

async function mountOne(m: { type: string; source: string; options: string[] }, target: string): Promise<void> {
  const args =
    m.type === 'bind' || m.type === 'rbind'
      ? ['--bind', ...(m.options.length ? ['-o', m.options.join(',')] : []), m.source, target]
      : ['-t', m.type, ...(m.options.length ? ['-o', m.options.join(',')] : []), m.source, target];
  const r = await execFile('mount', args);
  if (r.code !== 0) throw new StartError(`mount ${m.type} on ${target}: ${r.stderr.trim()}`, false);
}

async function unmountAll(target: string): Promise<void> {
  for (let i = 0; i < 8 && (await isMountPoint(target)); i++) {
    const r = await execFile('umount', [target]);
    if (r.code !== 0) {
      const lazy = await execFile('umount', ['-l', target]);
      if (lazy.code !== 0) throw new Error(lazy.stderr.trim());
    }
  }
}

export async function isMountPoint(path: string): Promise<boolean> {
  const info = await fs.readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((l) => l.split(' ')[4] === path);
}

async function readIfExists(p: string): Promise<string | null> {
  try {
    return await fs.readFile(p, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ESRCH') return null;
    throw e;
  }
}

async function isDir(p: string): Promise<boolean> {
  return fs
    .stat(p)
    .then((s) => s.isDirectory())
    .catch(() => false);
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
