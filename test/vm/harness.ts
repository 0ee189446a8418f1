/**
 * Boots Debian's kernel (linux-image-amd64, cgroup v2 by default) under qemu with software
 * emulation (`-accel tcg`: KVM guests hang on this machine) and runs a shell job in it.
 *
 * The initramfs holds only busybox, the virtio/9p modules of that kernel and guest-init.sh; it is
 * built at test time and cached by content hash under `<data dir>/vm/`. The guest mounts the host's
 * root read-only over 9p (`-virtfs`), so node, runc, the CNI plugins, the repository and its
 * node_modules are the host's own files; a second, writable share (the job directory) carries the
 * job in and its output, exit code and results out. guest-run.sh is stage 2: cgroup2 at
 * /sys/fs/cgroup, overlay/bridge/veth modules, then the job directly (PID 1 is a shell: the
 * cgroupfs driver) or as the one service of systemd as PID 1 (the systemd driver).
 */
import { execFileSync, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, promises as fs, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';

export const REPO_ROOT = resolve(__dirname, '../..');
const QEMU = 'qemu-system-x86_64';
const GUEST_MODULES = ['virtio_pci', '9pnet_virtio', '9p'];

export interface VmTools {
  qemu: string;
  kernel: string;
  kernelVersion: string;
}

function which(cmd: string): string | null {
  try {
    return execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'pipe' }).toString().trim() || null;
  } catch {
    return null;
  }
}

/** The newest Debian kernel in /boot whose modules are installed, or null. */
function findKernel(): { kernel: string; kernelVersion: string } | null {
  const versions = readdirSync('/boot')
    .filter((f) => f.startsWith('vmlinuz-'))
    .map((f) => f.slice('vmlinuz-'.length))
    .filter((v) => existsSync(join('/lib/modules', v, 'kernel/fs/9p/9p.ko')))
    .sort();
  const v = versions.at(-1);
  return v ? { kernel: `/boot/vmlinuz-${v}`, kernelVersion: v } : null;
}

/**
 * qemu and a Debian kernel with 9p modules: present, or installed now (qemu-system-x86,
 * linux-image-amd64; infra/deps.sh installs them for `npm test`). Returns why not when they
 * cannot be had, so the caller can skip saying so.
 */
export function ensureVmTools(): VmTools | string {
  let qemu = which(QEMU);
  let k = findKernel();
  if (!qemu || !k) {
    try {
      execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'qemu-system-x86', 'linux-image-amd64'], {
        stdio: 'pipe',
        env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
        timeout: 600_000,
      });
    } catch (e) {
      return `qemu-system-x86 / linux-image-amd64 are not installed and apt-get could not install them: ${(e as { stderr?: Buffer }).stderr?.toString().trim().split('\n').slice(-3).join(' ') || (e as Error).message}`;
    }
    qemu = which(QEMU);
    k = findKernel();
  }
  if (!qemu) return `${QEMU} not found after installing qemu-system-x86`;
  if (!k) return 'no /boot/vmlinuz-* with 9p modules in /lib/modules after installing linux-image-amd64';
  return { qemu, ...k };
}

function dataDir(): string {
  const d = process.env.BERTH_DATA_DIR ?? '.data';
  return d.startsWith('/') ? d : join(REPO_ROOT, d);
}

/** The modules (dependencies first) that let the guest mount a virtio 9p share. */
function guestModules(kernelVersion: string): string[] {
  const out: string[] = [];
  for (const m of GUEST_MODULES) {
    const deps = execFileSync('modprobe', ['-S', kernelVersion, '--show-depends', m], { stdio: 'pipe' }).toString();
    for (const line of deps.split('\n')) {
      const path = /^insmod (\S+)/.exec(line.trim())?.[1];
      if (path && !out.includes(path)) out.push(path);
    }
  }
  return out;
}

/** Builds (or reuses, by content hash) the initramfs: busybox, the 9p modules, guest-init.sh as /init. */
export function initramfs(tools: VmTools): string {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!busybox) throw new Error('busybox (Debian busybox-static) is needed for the guest initramfs');
  const modules = guestModules(tools.kernelVersion);
  const init = readFileSync(join(__dirname, 'guest-init.sh'));
  const hash = createHash('sha256');
  hash.update(init).update(readFileSync(busybox));
  for (const m of modules) hash.update(m).update(readFileSync(m));
  const dir = join(dataDir(), 'vm');
  const file = join(dir, `initramfs-${hash.digest('hex').slice(0, 16)}.cpio`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const tree = mkdtempSync(join(dir, 'tree-'));
  try {
    mkdirSync(join(tree, 'bin'));
    mkdirSync(join(tree, 'modules'));
    execFileSync('cp', [busybox, join(tree, 'bin/busybox')]);
    writeFileSync(join(tree, 'init'), init, { mode: 0o755 });
    for (const m of modules) execFileSync('cp', [m, join(tree, 'modules', basename(m))]);
    writeFileSync(join(tree, 'modules.order'), modules.map((m) => basename(m)).join('\n') + '\n');
    execFileSync('sh', ['-c', `cd "$1" && find . | "$2" cpio -o -H newc > "$3.tmp" 2>/dev/null && mv "$3.tmp" "$3"`, 'sh', tree, busybox, file]);
  } finally {
    rmSync(tree, { recursive: true, force: true });
  }
  return file;
}

export interface GuestJob {
  /** Shell script run in the guest (cwd /); its stdout+stderr is `output`, its exit code `exitCode`. */
  script: string;
  env?: Record<string, string>;
  /** PID 1 of stage 2: a shell (cgroupfs driver) or systemd. */
  init: 'sh' | 'systemd';
  /** Host paths copied into the guest's writable /var/tmp-style tree at the same path. */
  copy?: string[];
  memoryMiB?: number;
  cpus?: number;
  timeoutMs: number;
}

export interface GuestRun {
  /** null: the job never reported one (boot failure, timeout). */
  exitCode: number | null;
  output: string;
  serial: string;
  /** Files the job wrote to /job, by name (e.g. a jest JSON report). */
  files: Record<string, string>;
  /** Seconds from kernel start to stage 2 (cgroup2 mounted), per the guest's own uptime. */
  bootSeconds: number | null;
  wallSeconds: number;
  timedOut: boolean;
}

export async function runGuest(tools: VmTools, job: GuestJob): Promise<GuestRun> {
  const initrd = initramfs(tools);
  const jobDir = mkdtempSync('/var/tmp/berth-vm-job-');
  const t0 = Date.now();
  try {
    writeFileSync(join(jobDir, 'run.sh'), readFileSync(join(__dirname, 'guest-run.sh')));
    writeFileSync(join(jobDir, 'job.sh'), job.script);
    const env = { BERTH_VM_INIT: job.init, ...(job.env ?? {}) };
    writeFileSync(join(jobDir, 'job.env'), Object.entries(env).map(([k, v]) => `${k}=${shellQuote(v)}`).join('\n') + '\n');
    writeFileSync(join(jobDir, 'copy.list'), (job.copy ?? []).join('\n') + '\n');
    // The repository and its dependencies must be visible in the guest even when they live under
    // a directory the guest keeps private (/var, /tmp...).
    const binds = [REPO_ROOT, realpathSync(join(REPO_ROOT, 'node_modules'))];
    writeFileSync(join(jobDir, 'binds.list'), binds.join('\n') + '\n');
    const args = [
      '-accel', 'tcg',
      '-m', String(job.memoryMiB ?? 1024),
      '-smp', String(job.cpus ?? 1),
      '-nographic', '-no-reboot',
      '-kernel', tools.kernel,
      '-initrd', initrd,
      '-append', 'console=ttyS0 panic=-1 quiet',
      '-virtfs', 'local,path=/,mount_tag=host,security_model=none,readonly=on,multidevs=remap',
      '-virtfs', `local,path=${jobDir},mount_tag=job,security_model=none`,
    ];
    // Niced: the guest has a generous timeout and asserts no timings; the suites running beside it may.
    const child = spawn('nice', ['-n', '10', tools.qemu, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let serial = '';
    child.stdout.on('data', (c: Buffer) => (serial += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (serial += c.toString('utf8')));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, job.timeoutMs);
    // jest --forceExit must not leave a guest running.
    const killGuest = () => child.kill('SIGKILL');
    process.once('exit', killGuest);
    await new Promise<void>((r) => child.on('close', () => r()));
    process.off('exit', killGuest);
    clearTimeout(timer);
    const files: Record<string, string> = {};
    for (const f of readdirSync(jobDir)) {
      if (['run.sh', 'job.sh', 'job.env', 'copy.list', 'binds.list'].includes(f)) continue;
      files[f] = await fs.readFile(join(jobDir, f), 'utf8').catch(() => '');
    }
    const code = files['exit-code']?.trim();
    const boot = /stage 2 up after ([\d.]+) s/.exec(serial)?.[1];
    return {
      exitCode: code && /^\d+$/.test(code) ? Number(code) : null,
      output: files['output.log'] ?? '',
      serial,
      files,
      bootSeconds: boot ? Number(boot) : null,
      wallSeconds: (Date.now() - t0) / 1000,
      timedOut,
    };
  } finally {
    rmSync(jobDir, { recursive: true, force: true });
  }
}

function shellQuote(v: string): string {
  return `'${v.replace(/'/g, `'\\''`)}'`;
}
