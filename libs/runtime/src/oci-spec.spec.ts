import { InvalidSpecError } from './container-runtime';
import { buildOciSpec, DEFAULT_PATH, exposedTcpPorts, mergeEnv, processArgs, resolveUser } from './oci-spec';

const base = {
  id: 'web-1',
  rootfs: { path: '/r' },
  image: { Entrypoint: ['/bin/sh', '-c'], Cmd: ['exec httpd -f'], Env: ['PATH=/bin', 'GREETING=image', 'PORT=1'], WorkingDir: '/www' },
  resources: { cpuMillis: 250, memoryMiB: 128, pids: 100 },
  port: 9000,
};
const build = (over: object = {}, extra: object = {}) =>
  buildOciSpec({ spec: { ...base, ...over }, rootfsPath: '/r', netnsPath: '/run/netns/berth-web-1', cgroupsPath: '/berth/web-1', user: { uid: 0, gid: 0 }, arch: 'x64', ...extra });

describe('buildOciSpec', () => {
  it('runs Entrypoint + Cmd, or the command override instead of both', () => {
    expect(build().process.args).toEqual(['/bin/sh', '-c', 'exec httpd -f']);
    expect(build({ command: ['sleep', '1'] }).process.args).toEqual(['sleep', '1']);
    expect(() => build({ image: {} })).toThrow(InvalidSpecError);
  });

  it('env: image, then service, then PORT (platform-owned); default PATH when the image has none', () => {
    const env = build({ env: { GREETING: 'service', PORT: '7' } }).process.env;
    expect(env).toEqual(expect.arrayContaining(['PATH=/bin', 'GREETING=service', 'PORT=9000', 'HOSTNAME=web-1']));
    expect(env.filter((e) => e.startsWith('PORT='))).toEqual(['PORT=9000']);
    expect(mergeEnv([], {})).toEqual([`PATH=${DEFAULT_PATH}`]);
    expect(() => mergeEnv([], { 'BAD-NAME': 'x' })).toThrow(/BAD-NAME/);
  });

  it('limits: cpu quota per 100 ms period from millicores, memory with swap = memory, pids', () => {
    const r = build().linux.resources;
    expect(r.cpu).toEqual({ quota: 25_000, period: 100_000, shares: 256 });
    expect(r.memory).toEqual({ limit: 128 * 1024 * 1024, swap: 128 * 1024 * 1024 });
    expect(r.pids).toEqual({ limit: 100 });
    expect(() => build({ resources: { cpuMillis: 250, memoryMiB: 0, pids: 1 } })).toThrow(/memoryMiB/);
    expect(() => build({ resources: { cpuMillis: 1.5, memoryMiB: 64, pids: 1 } })).toThrow(/cpuMillis/);
    expect(() => build({ port: 70000 })).toThrow(/port/);
  });

  it('security defaults: Docker capabilities without SYS_ADMIN, no new privileges, masked paths, seccomp deny-by-default', () => {
    const s = build();
    expect(s.process.noNewPrivileges).toBe(true);
    expect(s.process.capabilities.bounding).toContain('CAP_NET_BIND_SERVICE');
    for (const cap of ['CAP_SYS_ADMIN', 'CAP_NET_ADMIN', 'CAP_SYS_PTRACE', 'CAP_SYS_MODULE']) expect(s.process.capabilities.bounding).not.toContain(cap);
    expect(s.linux.maskedPaths).toEqual(expect.arrayContaining(['/proc/kcore', '/sys/firmware']));
    expect(s.linux.readonlyPaths).toEqual(expect.arrayContaining(['/proc/sys', '/proc/sysrq-trigger']));
    const seccomp = s.linux.seccomp!;
    expect(seccomp.defaultAction).toBe('SCMP_ACT_ERRNO');
    const allowed = seccomp.syscalls.filter((r) => r.action === 'SCMP_ACT_ALLOW' && !r.args).flatMap((r) => r.names);
    for (const bad of ['mount', 'umount2', 'kexec_load', 'bpf', 'ptrace', 'unshare', 'setns', 'init_module', 'reboot', 'keyctl']) expect(allowed).not.toContain(bad);
    for (const ok of ['read', 'execve', 'clock_gettime', 'arch_prctl']) expect(allowed).toContain(ok);
    expect(build({}, { seccomp: false }).linux.seccomp).toBeUndefined();
  });

  it('no host mounts: only kernel filesystems; /sys read-only', () => {
    const m = build().mounts;
    expect(m.map((x) => x.type).sort()).toEqual(['devpts', 'mqueue', 'proc', 'sysfs', 'tmpfs', 'tmpfs']);
    expect(m.some((x) => x.type === 'bind' || x.options.includes('bind') || x.options.includes('rbind'))).toBe(false);
    expect(m.find((x) => x.destination === '/sys')!.options).toContain('ro');
  });

  it('namespaces, cgroups path, hostname, read-only rootfs, working dir', () => {
    const s = build({ readOnlyRootfs: true, hostname: 'web-1.replica' });
    expect(s.linux.namespaces).toEqual([{ type: 'pid' }, { type: 'network', path: '/run/netns/berth-web-1' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }]);
    expect(s.linux.cgroupsPath).toBe('/berth/web-1');
    expect(s.hostname).toBe('web-1.replica');
    expect(s.root).toEqual({ path: '/r', readonly: true });
    expect(s.process.cwd).toBe('/www');
    expect(build().root.readonly).toBe(false);
  });
});

describe('resolveUser', () => {
  const passwd = 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001:app:/home/app:/bin/sh\n';
  const group = 'root:x:0:\nstaff:x:50:\n';
  it('numeric uid[:gid], names from /etc/passwd and /etc/group', () => {
    expect(resolveUser(null, null, null)).toEqual({ uid: 0, gid: 0 });
    expect(resolveUser('1234', null, null)).toEqual({ uid: 1234, gid: 0 });
    expect(resolveUser('1234:77', null, null)).toEqual({ uid: 1234, gid: 77 });
    expect(resolveUser('1000', passwd, group)).toEqual({ uid: 1000, gid: 1001 });
    expect(resolveUser('app', passwd, group)).toEqual({ uid: 1000, gid: 1001 });
    expect(resolveUser('app:staff', passwd, group)).toEqual({ uid: 1000, gid: 50 });
  });
  it('names that do not exist are a clear error', () => {
    expect(() => resolveUser('ghost', passwd, group)).toThrow(/user "ghost" not found/);
    expect(() => resolveUser('app:ghosts', passwd, group)).toThrow(/group "ghosts" not found/);
  });
});

describe('helpers', () => {
  it('exposedTcpPorts and processArgs validation', () => {
    expect(exposedTcpPorts({ ExposedPorts: { '8080/tcp': {}, '53/udp': {}, '9000': {} } })).toEqual([8080, 9000]);
    expect(() => processArgs({}, [1 as unknown as string])).toThrow(/strings/);
  });
});
