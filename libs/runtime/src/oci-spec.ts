/**
 * Pure builder of an OCI runtime `config.json` from an image config, service overrides, limits and
 * Berth's security defaults. No I/O: the caller reads /etc/passwd and /etc/group from the rootfs and
 * passes their text to `resolveUser`.
 */
import { ContainerSpec, ImageConfig, InvalidSpecError } from './container-runtime';
import { defaultSeccompProfile, SeccompProfile } from './seccomp-profile';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const CPU_PERIOD_US = 100_000;

/** Docker's default capability set: no CAP_SYS_ADMIN, NET_ADMIN, SYS_PTRACE, SYS_MODULE, ... */
export const DEFAULT_CAPABILITIES = [
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FSETID',
  'CAP_FOWNER',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETFCAP',
  'CAP_SETPCAP',
  'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT',
  'CAP_KILL',
  'CAP_AUDIT_WRITE',
];

/** Docker's masked and read-only paths: kernel knobs and information a container has no business with. */
export const MASKED_PATHS = [
  '/proc/asound',
  '/proc/acpi',
  '/proc/kcore',
  '/proc/keys',
  '/proc/latency_stats',
  '/proc/timer_list',
  '/proc/timer_stats',
  '/proc/sched_debug',
  '/proc/scsi',
  '/sys/firmware',
  '/sys/devices/virtual/powercap',
];
export const READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

export interface OciUser {
  uid: number;
  gid: number;
  additionalGids?: number[];
}

export interface BuildOciSpecInput {
  spec: ContainerSpec;
  /** Path of the rootfs, absolute or relative to the bundle. */
  rootfsPath: string;
  /** Network namespace to join; null gives the container a fresh, unconnected one. */
  netnsPath: string | null;
  cgroupsPath: string;
  user: OciUser;
  /** false disables seccomp (debugging only). */
  seccomp?: boolean;
  arch?: string;
}

// A loose type: the OCI runtime spec has many more optional fields than Berth sets.
export type OciSpec = {
  ociVersion: string;
  process: {
    terminal: boolean;
    user: OciUser;
    args: string[];
    env: string[];
    cwd: string;
    capabilities: Record<'bounding' | 'effective' | 'permitted' | 'inheritable' | 'ambient', string[]>;
    rlimits: { type: string; hard: number; soft: number }[];
    noNewPrivileges: boolean;
  };
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: { destination: string; type: string; source: string; options: string[] }[];
  annotations: Record<string, string>;
  linux: {
    cgroupsPath: string;
    resources: {
      devices: { allow: boolean; access: string }[];
      memory: { limit: number; swap: number };
      cpu: { quota: number; period: number; shares: number };
      pids: { limit: number };
    };
    namespaces: { type: string; path?: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
    seccomp?: SeccompProfile;
  };
};

export function processArgs(image: ImageConfig, command: string[] | null | undefined): string[] {
  const args = command && command.length > 0 ? command : [...(image.Entrypoint ?? []), ...(image.Cmd ?? [])];
  if (args.length === 0) throw new InvalidSpecError('no command: the image has no Entrypoint/Cmd and the service sets none');
  if (args.some((a) => typeof a !== 'string')) throw new InvalidSpecError('command must be a list of strings');
  return args;
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** Image env, then service env, then PORT (platform-owned, like Cloud Run); later wins. */
export function mergeEnv(imageEnv: string[] | null | undefined, env: Record<string, string> = {}, port?: number, hostname?: string): string[] {
  const out = new Map<string, string>();
  for (const kv of imageEnv ?? []) {
    const i = kv.indexOf('=');
    if (i > 0) out.set(kv.slice(0, i), kv.slice(i + 1));
  }
  if (!out.has('PATH')) out.set('PATH', DEFAULT_PATH);
  if (hostname) out.set('HOSTNAME', hostname);
  for (const [k, v] of Object.entries(env)) {
    if (!ENV_NAME.test(k)) throw new InvalidSpecError(`environment variable name ${JSON.stringify(k)} is invalid`);
    if (typeof v !== 'string') throw new InvalidSpecError(`environment variable ${k} must be a string`);
    out.set(k, v);
  }
  if (port !== undefined) out.set('PORT', String(port));
  return [...out].map(([k, v]) => `${k}=${v}`);
}

/**
 * Resolves `user` (service override, else the image's User) to numeric ids. Accepts `uid`, `uid:gid`,
 * `name`, `name:group`; names are looked up in the rootfs' passwd/group text. Empty → root.
 */
export function resolveUser(user: string | null | undefined, passwd: string | null, group: string | null): OciUser {
  const u = (user ?? '').trim();
  if (u === '') return { uid: 0, gid: 0 };
  const [userPart, groupPart] = u.split(':', 2);
  const passwdEntries = parseColonFile(passwd);
  let uid: number;
  let gid: number | undefined;
  if (/^\d+$/.test(userPart)) {
    uid = Number(userPart);
    const entry = passwdEntries.find((e) => Number(e[2]) === uid);
    if (entry) gid = Number(entry[3]);
  } else {
    const entry = passwdEntries.find((e) => e[0] === userPart);
    if (!entry) throw new InvalidSpecError(`user ${JSON.stringify(userPart)} not found in the image's /etc/passwd`);
    uid = Number(entry[2]);
    gid = Number(entry[3]);
  }
  if (groupPart !== undefined && groupPart !== '') {
    if (/^\d+$/.test(groupPart)) gid = Number(groupPart);
    else {
      const entry = parseColonFile(group).find((e) => e[0] === groupPart);
      if (!entry) throw new InvalidSpecError(`group ${JSON.stringify(groupPart)} not found in the image's /etc/group`);
      gid = Number(entry[2]);
    }
  }
  if (!Number.isSafeInteger(uid) || uid < 0 || uid > 0xfffffffe) throw new InvalidSpecError(`invalid uid in user ${JSON.stringify(u)}`);
  // Like Docker: a uid with no passwd entry and no explicit group runs with gid 0.
  return { uid, gid: gid ?? 0 };
}

function parseColonFile(text: string | null): string[][] {
  if (!text) return [];
  return text
    .split('\n')
    .filter((l) => l.trim() !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

export function validateResources(r: ContainerSpec['resources']): void {
  const bad = (what: string) => {
    throw new InvalidSpecError(what);
  };
  if (!r || typeof r !== 'object') bad('resources are required');
  if (!Number.isInteger(r.cpuMillis) || r.cpuMillis < 10) bad(`resources.cpuMillis must be an integer ≥ 10, got ${r.cpuMillis}`);
  if (!Number.isInteger(r.memoryMiB) || r.memoryMiB < 4) bad(`resources.memoryMiB must be an integer ≥ 4, got ${r.memoryMiB}`);
  if (!Number.isInteger(r.pids) || r.pids < 1) bad(`resources.pids must be an integer ≥ 1, got ${r.pids}`);
}

export function buildOciSpec(input: BuildOciSpecInput): OciSpec {
  const { spec } = input;
  validateResources(spec.resources);
  if (spec.port !== undefined && (!Number.isInteger(spec.port) || spec.port < 1 || spec.port > 65535)) {
    throw new InvalidSpecError(`port must be 1..65535, got ${spec.port}`);
  }
  const hostname = spec.hostname ?? spec.id;
  const memory = spec.resources.memoryMiB * 1024 * 1024;
  const cwd = spec.image.WorkingDir && spec.image.WorkingDir.startsWith('/') ? spec.image.WorkingDir : '/';
  const caps = [...DEFAULT_CAPABILITIES];
  const namespaces: OciSpec['linux']['namespaces'] = [
    { type: 'pid' },
    input.netnsPath ? { type: 'network', path: input.netnsPath } : { type: 'network' },
    { type: 'ipc' },
    { type: 'uts' },
    { type: 'mount' },
  ];
  const oci: OciSpec = {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: input.user,
      args: processArgs(spec.image, spec.command),
      env: mergeEnv(spec.image.Env, spec.env, spec.port, hostname),
      cwd,
      capabilities: { bounding: caps, effective: caps, permitted: caps, inheritable: [], ambient: [] },
      // No rlimits: the container inherits the agent's (raising them needs CAP_SYS_RESOURCE on the host).
      rlimits: [],
      noNewPrivileges: true,
    },
    root: { path: input.rootfsPath, readonly: spec.readOnlyRootfs === true },
    hostname,
    // Kernel filesystems only; nothing from the host is bind-mounted in.
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    annotations: { ...(spec.annotations ?? {}) },
    linux: {
      cgroupsPath: input.cgroupsPath,
      resources: {
        devices: [{ allow: false, access: 'rwm' }],
        // swap = limit: memory+swap may not exceed memory, i.e. no swap at all.
        memory: { limit: memory, swap: memory },
        cpu: {
          quota: Math.max(1000, Math.round((spec.resources.cpuMillis * CPU_PERIOD_US) / 1000)),
          period: CPU_PERIOD_US,
          shares: Math.max(2, Math.round((spec.resources.cpuMillis * 1024) / 1000)),
        },
        pids: { limit: spec.resources.pids },
      },
      namespaces,
      maskedPaths: [...MASKED_PATHS],
      readonlyPaths: [...READONLY_PATHS],
    },
  };
  if (input.seccomp !== false) oci.linux.seccomp = defaultSeccompProfile(input.arch);
  return oci;
}

/** Ports the image declares (`8080/tcp` → 8080), for callers that need a default service port. */
export function exposedTcpPorts(image: ImageConfig): number[] {
  return Object.keys(image.ExposedPorts ?? {})
    .map((k) => k.split('/'))
    .filter(([, proto]) => (proto ?? 'tcp') === 'tcp')
    .map(([p]) => Number(p))
    .filter((p) => Number.isInteger(p) && p > 0 && p < 65536)
    .sort((a, b) => a - b);
}
