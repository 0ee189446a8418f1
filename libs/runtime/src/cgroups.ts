/**
 * Where a container's cgroup lives, for the two cgroup drivers runc knows:
 *
 * - `cgroupfs`: runc writes the cgroup files itself; `cgroupsPath` is `<parent>/<id>` and the
 *   cgroup is that path under each hierarchy root (v1: one root per controller; v2: /sys/fs/cgroup).
 * - `systemd`: systemd owns the tree (it is PID 1); runc (`--systemd-cgroup`) asks it for a
 *   transient scope unit `berth-<id>.scope`. Each container gets its own slice under the node's
 *   slice (made from the parent, `/berth/node-1` → `berth-node_1.slice`, see `systemdSliceFor`):
 *   `cgroupsPath` is `berth-node_1-<id>.slice:berth:<id>` (a `-` in the id escaped `\x2d`, as
 *   systemd does), and the cgroup is
 *   `/sys/fs/cgroup/berth.slice/berth-node_1.slice/berth-node_1-<id>.slice/berth-<id>.scope` on v2.
 *   Why a slice per container: systemd stops an empty scope and removes its cgroup the moment the
 *   container's last process exits, so the scope's memory.events is gone before the shim can read
 *   `oom_kill`; the container's slice stays until `destroy` stops it, and its memory.events counts
 *   the kills of the scope below it (v2 events are hierarchical).
 *
 * Pure: the caller says whether systemd is running and which driver the operator asked for.
 */
export type CgroupDriver = 'cgroupfs' | 'systemd';

export const CGROUP_DRIVER_ENV = 'BERTH_CGROUP_DRIVER';
/** The scope prefix: runc names the unit `<prefix>-<id>.scope`. */
export const SYSTEMD_SCOPE_PREFIX = 'berth';

/**
 * `requested` (BERTH_CGROUP_DRIVER) wins when set; otherwise systemd when it is PID 1 (the directory
 * `/run/systemd/system` exists, sd_booted's test) on a cgroup v2 host, else cgroupfs. On v1 the
 * OOM counter (`memory.oom_control`) is not hierarchical, so the per-container slice that keeps it
 * readable under systemd does not help there: v1 hosts stay on cgroupfs unless told otherwise.
 */
export function selectCgroupDriver(requested: string | undefined, systemdBooted: boolean, cgroupV2: boolean): CgroupDriver {
  const r = (requested ?? '').trim();
  if (r === 'cgroupfs' || r === 'systemd') return r;
  if (r !== '' && r !== 'auto') throw new Error(`${CGROUP_DRIVER_ENV} must be cgroupfs, systemd or auto, got ${JSON.stringify(requested)}`);
  return systemdBooted && cgroupV2 ? 'systemd' : 'cgroupfs';
}

/** What `selectCgroupDriver` needs to know about this host. */
export function hostCgroupFacts(exists: (path: string) => boolean): { systemdBooted: boolean; cgroupV2: boolean } {
  return { systemdBooted: exists('/run/systemd/system'), cgroupV2: exists('/sys/fs/cgroup/cgroup.controllers') };
}

/**
 * The systemd slice for a cgroupfs-style parent: path segments joined with `-` (systemd's slice
 * hierarchy separator), characters a unit name may not hold (and `.`) replaced by `_`.
 * `/berth/node-1` → `berth-node_1.slice`; `/berth-test-conf` → `berth_test_conf.slice`.
 * A `-` inside a segment would make systemd nest one slice deeper, so it is escaped like the rest.
 */
export function systemdSliceFor(parent: string): string {
  const segments = parent.split('/').filter(Boolean).map((s) => s.replace(/[^A-Za-z0-9_:]/g, '_'));
  if (segments.length === 0) throw new Error(`cgroup parent ${JSON.stringify(parent)} has no name to make a systemd slice of`);
  return `${segments.join('-')}.slice`;
}

/** systemd's slice expansion: `a-b-c.slice` → `a.slice/a-b.slice/a-b-c.slice`. */
export function expandSlice(slice: string): string {
  if (!slice.endsWith('.slice')) throw new Error(`${slice} is not a slice`);
  const name = slice.slice(0, -'.slice'.length);
  if (name === '-' || name === '') return '';
  const parts = name.split('-');
  return parts.map((_, i) => `${parts.slice(0, i + 1).join('-')}.slice`).join('/');
}

export interface CgroupLayout {
  driver: CgroupDriver;
  /** systemd: the slice every container scope lives in. */
  slice: string | null;
  /** The directory (relative to a hierarchy root, leading `/`) holding every container cgroup. */
  parentPath: string;
  /** `linux.cgroupsPath` in the OCI spec. */
  cgroupsPath(id: string): string;
  /** The container's cgroup directory relative to a hierarchy root (leading `/`). */
  relPath(id: string): string;
  /** The container id owning a directory found under `parentPath`, or null if it is not one of ours. */
  idOf(entry: string): string | null;
  /** The directory (relative to a hierarchy root) whose memory.events counts the container's OOM kills after it exited. */
  oomDir(id: string): string;
  /** systemd units to stop when the container is destroyed (runc delete stops the scope, not its slice). */
  units(id: string): string[];
}

/** systemd's unit-name escaping for the characters a container id may hold: `-` is `\x2d`. */
export function escapeUnitPart(s: string): string {
  return s.replace(/-/g, '\\x2d');
}
export function unescapeUnitPart(s: string): string {
  return s.replace(/\\x2d/g, '-');
}

export function cgroupLayout(driver: CgroupDriver, parent: string): CgroupLayout {
  const clean = `/${parent.split('/').filter(Boolean).join('/')}`;
  if (driver === 'cgroupfs') {
    return {
      driver,
      slice: null,
      parentPath: clean,
      cgroupsPath: (id) => `${clean}/${id}`,
      relPath: (id) => `${clean}/${id}`,
      idOf: (entry) => entry,
      oomDir: (id) => `${clean}/${id}`,
      units: () => [],
    };
  }
  const slice = systemdSliceFor(parent);
  const base = slice.slice(0, -'.slice'.length);
  const parentPath = `/${expandSlice(slice)}`;
  const containerSlice = (id: string) => `${base}-${escapeUnitPart(id)}.slice`;
  const sliceDir = (id: string) => `${parentPath}/${containerSlice(id)}`;
  return {
    driver,
    slice,
    parentPath,
    cgroupsPath: (id) => `${containerSlice(id)}:${SYSTEMD_SCOPE_PREFIX}:${id}`,
    relPath: (id) => `${sliceDir(id)}/${SYSTEMD_SCOPE_PREFIX}-${id}.scope`,
    idOf: (entry) => {
      if (!entry.startsWith(`${base}-`) || !entry.endsWith('.slice')) return null;
      const part = entry.slice(base.length + 1, -'.slice'.length);
      return part && !part.includes('-') ? unescapeUnitPart(part) : null;
    },
    oomDir: sliceDir,
    units: (id) => [containerSlice(id)],
  };
}

/** Resource usage and limits read from a container's cgroup files (v1 or v2). null: not readable. */
export interface CgroupStats {
  /** memory.current / memory.usage_in_bytes */
  memoryBytes: number | null;
  /** memory.max / memory.limit_in_bytes; null = unlimited */
  memoryLimitBytes: number | null;
  /** cpu.stat usage_usec / cpuacct.usage ÷ 1000 */
  cpuUsageUsec: number | null;
  /** cpu.max / cpu.cfs_quota_us + cpu.cfs_period_us; quota null = unlimited */
  cpuQuotaUs: number | null;
  cpuPeriodUs: number | null;
  pids: number | null;
  /** pids.max; null = unlimited */
  pidsLimit: number | null;
  /** cgroup.events `frozen` / freezer.state FROZEN */
  frozen: boolean;
  /** memory.events `oom_kill` / memory.oom_control `oom_kill` */
  oomKills: number;
}

/** `max` → null, a number → that number, absent → null. */
export function parseLimit(text: string | null): number | null {
  if (text === null) return null;
  const t = text.trim();
  if (t === '' || t === 'max') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

/** One `key value` line of a flat keyed file (cpu.stat, memory.events, cgroup.events, memory.oom_control). */
export function keyed(text: string | null, key: string): number | null {
  if (text === null) return null;
  for (const line of text.split('\n')) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key) return Number(v);
  }
  return null;
}

/** Reads the files of one container's cgroup; `read(controller, file)` returns null when absent. */
export async function readCgroupStats(v2: boolean, read: (controller: string, file: string) => Promise<string | null>): Promise<CgroupStats> {
  if (v2) {
    const cpuMax = (await read('', 'cpu.max'))?.trim().split(/\s+/) ?? null;
    const usage = keyed(await read('', 'cpu.stat'), 'usage_usec');
    return {
      memoryBytes: parseLimit(await read('', 'memory.current')),
      memoryLimitBytes: parseLimit(await read('', 'memory.max')),
      cpuUsageUsec: usage,
      cpuQuotaUs: cpuMax ? parseLimit(cpuMax[0]) : null,
      cpuPeriodUs: cpuMax && cpuMax[1] ? Number(cpuMax[1]) : null,
      pids: parseLimit(await read('', 'pids.current')),
      pidsLimit: parseLimit(await read('', 'pids.max')),
      frozen: keyed(await read('', 'cgroup.events'), 'frozen') === 1,
      oomKills: keyed(await read('', 'memory.events'), 'oom_kill') ?? 0,
    };
  }
  const quota = parseLimit(await read('cpu', 'cpu.cfs_quota_us'));
  const limit = parseLimit(await read('memory', 'memory.limit_in_bytes'));
  const ns = parseLimit(await read('cpuacct', 'cpuacct.usage'));
  return {
    memoryBytes: parseLimit(await read('memory', 'memory.usage_in_bytes')),
    // v1 reports "unlimited" as a huge page-rounded number.
    memoryLimitBytes: limit !== null && limit >= 2 ** 62 ? null : limit,
    cpuUsageUsec: ns === null ? null : Math.round(ns / 1000),
    cpuQuotaUs: quota !== null && quota < 0 ? null : quota,
    cpuPeriodUs: parseLimit(await read('cpu', 'cpu.cfs_period_us')),
    pids: parseLimit(await read('pids', 'pids.current')),
    pidsLimit: parseLimit(await read('pids', 'pids.max')),
    frozen: (await read('freezer', 'freezer.state'))?.trim() === 'FROZEN',
    oomKills: keyed(await read('memory', 'memory.oom_control'), 'oom_kill') ?? 0,
  };
}
