/**
 * The runc runtime against real runc, cgroups and CNI: HTTP app reachable on its address, OOM kill
 * recorded, pids limit holds a fork bomb, isolation (hostname, filesystems, syscalls), non-root user,
 * read-only rootfs, logs, and gc of leftovers after an agent crash. Every test cleans up; the suite
 * ends with a leak report that must be empty.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CniNetwork, RuncRuntime } from '@berth/runtime';
import { createTestEnv, eventually, httpGet, leakReport, TestEnv } from './fixture';

jest.setTimeout(30_000);

let env: TestEnv;
beforeAll(() => {
  env = createTestEnv('runc', 12);
});
afterAll(async () => {
  const leaks = await env.teardown();
  expect(leaks).toEqual([]);
});

/** Runs a short-lived container and returns its output and exit code. */
async function runToEnd(id: string, command: string[], over: Parameters<TestEnv['spec']>[1] = {}) {
  await env.runtime.start(env.spec(id, { command, ...over }));
  try {
    const exit = await env.runtime.wait(id);
    return { exit, output: (await env.runtime.logs(id).tail(100)).join('\n') };
  } finally {
    await env.runtime.destroy(id);
  }
}

it('an HTTP app answers on its reported address, on the PORT it was given', async () => {
  const h = await env.runtime.start(env.spec('web', { port: 9090 }));
  try {
    expect(h.address).toMatch(/^10\.201\.12\.\d+$/);
    const res = await eventually(() => httpGet(`http://${h.address}:9090/`), 5000, 10);
    expect(res).toEqual({ status: 200, body: 'hello from berth fixture\n' });
    await expect(httpGet(`http://${h.address}:8080/`, 300)).rejects.toThrow(); // the image default is overridden
  } finally {
    await env.runtime.destroy('web');
  }
});

it('exceeding the memory limit is an OOM kill: exit 137 and oomKilled', async () => {
  const { exit } = await runToEnd('oom', ['sh', '-c', 'x=aaaaaaaa; while :; do x=$x$x; done'], {
    resources: { cpuMillis: 1000, memoryMiB: 16, pids: 16 },
  });
  expect(exit).toMatchObject({ code: 137, signal: 'SIGKILL', oomKilled: true });
});

it('a plain SIGKILL is not mistaken for an OOM kill', async () => {
  await env.runtime.start(env.spec('notoom', { command: ['sleep', '100'] }));
  try {
    expect(await env.runtime.stop('notoom', { signal: 'SIGKILL' })).toMatchObject({ code: 137, oomKilled: false });
  } finally {
    await env.runtime.destroy('notoom');
  }
});

it('a fork bomb is capped by the pids limit and the host stays responsive', async () => {
  const pids = 32;
  await env.runtime.start(env.spec('bomb', { command: ['sh', '-c', 'b() { b | b & }; b; sleep 100'], resources: { cpuMillis: 500, memoryMiB: 64, pids } }));
  try {
    const pidsCurrent = join(env.runtime.cgroupDir('bomb', 'pids'), 'pids.current');
    let peak = 0;
    const until = Date.now() + 2000;
    let hostSpawns = 0;
    while (Date.now() < until) {
      if (existsSync(pidsCurrent)) peak = Math.max(peak, Number(readFileSync(pidsCurrent, 'utf8')));
      execFileSync('true'); // the host can still start processes (this throws if fork fails)
      hostSpawns++;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(peak).toBeGreaterThan(pids / 2); // it really tried
    expect(peak).toBeLessThanOrEqual(pids);
    expect(hostSpawns).toBeGreaterThan(0);
  } finally {
    await env.runtime.destroy('bomb');
  }
});

it('isolation: own hostname, no host /etc/hostname, no view of another container’s files', async () => {
  const hostHostname = readFileSync('/etc/hostname', 'utf8').trim();
  await env.runtime.start(env.spec('iso-a', { command: ['sh', '-c', 'echo secret-a > /secret; exec sleep 100'] }));
  try {
    await eventually(async () => (await fs.readFile(join(env.dir, 'overlay', 'iso-a', 'upper', 'secret'), 'utf8').catch(() => null)) !== null && true);
    const { exit, output } = await runToEnd('iso-b', [
      'sh',
      '-c',
      'echo "hostname=$(hostname)"; cat /etc/hostname 2>/dev/null || echo "no-etc-hostname"; cat /secret 2>/dev/null || echo "no-secret"; ls /proc/1/root/secret 2>/dev/null || echo "no-proc-escape"',
    ]);
    expect(exit.code).toBe(0);
    expect(output).toContain('hostname=iso-b');
    expect(output).not.toContain(hostHostname);
    expect(output).toContain('no-etc-hostname');
    expect(output).toContain('no-secret');
    expect(output).toContain('no-proc-escape');
  } finally {
    await env.runtime.destroy('iso-a');
  }
});

it('security defaults: seccomp filter on, no new privileges, mount refused, /proc/sys read-only, kcore masked, no CAP_SYS_ADMIN', async () => {
  const { output } = await runToEnd('sec', [
    'sh',
    '-c',
    'mount -t tmpfs none /tmp 2>/dev/null && echo mounted || echo mount-refused; ' +
      '(echo 1 > /proc/sys/kernel/hostname) 2>/dev/null && echo sys-writable || echo sys-readonly; ' +
      'head -c 1 /proc/kcore 2>/dev/null | grep -q . && echo kcore-readable || echo kcore-masked; ' +
      'grep -E "CapEff|Seccomp:|NoNewPrivs" /proc/self/status',
  ]);
  expect(output).toMatch(/Seccomp:\s+2/); // filter mode
  expect(output).toMatch(/NoNewPrivs:\s+1/);
  expect(output).toContain('mount-refused');
  expect(output).toContain('sys-readonly');
  expect(output).toContain('kcore-masked');
  const capEff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(output)![1]}`);
  expect(capEff & (1n << 21n)).toBe(0n); // CAP_SYS_ADMIN
  expect(capEff & (1n << 10n)).not.toBe(0n); // CAP_NET_BIND_SERVICE is kept
});

it('runs as a named non-root user and honours a read-only rootfs', async () => {
  const { output } = await runToEnd('user', ['sh', '-c', 'id -u; id -g; touch /www/x 2>/dev/null && echo writable || echo readonly'], {
    user: 'app',
    readOnlyRootfs: true,
  });
  expect(output.split('\n').slice(0, 3)).toEqual(['1000', '1000', 'readonly']);
  const bad = await env.runtime.start(env.spec('ghost', { user: 'ghost' })).catch((e) => e);
  expect(bad.message).toMatch(/user "ghost" not found/);
  expect(bad.recoverable).toBe(false);
  expect(await leakReport(env.runtime, env.network)).toEqual([]); // a refused start leaves nothing
});

it('a missing executable is a permanent start error with runc’s reason', async () => {
  const err = await env.runtime.start(env.spec('noexec', { command: ['/bin/does-not-exist'] })).catch((e) => e);
  expect(err.name).toBe('StartError');
  expect(err.message).toMatch(/does-not-exist/);
  expect(err.recoverable).toBe(false);
  expect(await leakReport(env.runtime, env.network)).toEqual([]);
});

it('a network attach failure while runc starts the process tears the container down', async () => {
  const n = env.network;
  const broken = new CniNetwork({ pluginDir: join(env.dir, 'no-plugins'), bridge: n.bridge, subnet: n.subnet, dataDir: n.dataDir, netnsPrefix: n.netnsPrefix, networkName: n.networkName });
  const rt = new RuncRuntime({ stateDir: env.runtime.stateDir, runcRoot: env.runtime.runcRoot, cgroupParent: env.runtime.cgroupParent, network: broken, rotateIntervalMs: 0 });
  const err = await rt.start(env.spec('netfail', { command: ['sleep', '100'] })).catch((e) => e);
  expect(err.name).toBe('StartError');
  expect(err.message).toMatch(/no-plugins|ENOENT/);
  expect(await leakReport(env.runtime, env.network)).toEqual([]);
});

it('follow streams lines as the container writes them', async () => {
  await env.runtime.start(env.spec('follow', { command: ['sh', '-c', 'sleep 0.3; i=0; while [ $i -lt 5 ]; do echo line-$i; i=$((i+1)); sleep 0.05; done; exec sleep 100'] }));
  try {
    const ac = new AbortController();
    const timer = setTimeout(() => ac.abort(), 5000);
    const seen: string[] = [];
    for await (const line of env.runtime.logs('follow').follow(ac.signal)) {
      seen.push(line);
      if (seen.length === 5) ac.abort();
    }
    clearTimeout(timer);
    expect(seen).toEqual(['line-0', 'line-1', 'line-2', 'line-3', 'line-4']);
  } finally {
    await env.runtime.destroy('follow');
  }
});

it('logs written by a running container rotate by size and tail still reads across files', async () => {
  const rt = new RuncRuntime({ stateDir: env.runtime.stateDir, runcRoot: env.runtime.runcRoot, cgroupParent: env.runtime.cgroupParent, network: env.network, rotateIntervalMs: 0, logRotation: { maxBytes: 2000, files: 3 } });
  await rt.start(env.spec('rotate', { command: ['sh', '-c', 'i=0; while [ $i -lt 300 ]; do echo "line-$i"; i=$((i+1)); done; sleep 0.3; echo after-rotation; exec sleep 100'] }));
  try {
    const logDir = join(env.runtime.stateDir, 'logs', 'rotate');
    await eventually(async () => ((await fs.stat(join(logDir, 'output.log')).catch(() => null))?.size ?? 0) > 2000, 3000);
    await rt.rotateLogs();
    expect(existsSync(join(logDir, 'output.log.1'))).toBe(true);
    await eventually(async () => (await rt.logs('rotate').tail(1))[0] === 'after-rotation', 3000);
    // The writer kept its O_APPEND descriptor: new lines land in the truncated live file, not past a hole.
    expect(readFileSync(join(logDir, 'output.log'), 'utf8')).toBe('after-rotation\n');
    expect(await rt.logs('rotate').tail(2)).toEqual(['line-299', 'after-rotation']);
  } finally {
    await rt.destroy('rotate');
  }
});

it('gc removes the leftovers of a container whose record vanished (agent crash mid-way)', async () => {
  const h = await env.runtime.start(env.spec('orphan', { command: ['sleep', '100'] }));
  expect(await env.network.listNamespaces()).toContain('orphan');
  // The agent "crashed" after runc started it but before the record was durable.
  await fs.rm(join(env.runtime.stateDir, 'containers', 'orphan', 'record.json'));
  expect(await env.runtime.gc()).toEqual(['orphan']);
  expect(existsSync(`/proc/${h.pid}`)).toBe(false);
  expect(await leakReport(env.runtime, env.network)).toEqual([]);
});

it('gc keeps recorded containers unless told they are unwanted', async () => {
  await env.runtime.start(env.spec('kept', { command: ['sleep', '100'] }));
  expect(await env.runtime.gc()).toEqual([]);
  expect((await env.runtime.inspect('kept')).status).toBe('running');
  expect(await env.runtime.gc((id) => id !== 'kept')).toEqual(['kept']);
  expect(await env.runtime.list()).toEqual([]);
});

it('stats read the limits back from the cgroup files; freeze holds the processes until thaw, and a frozen container still stops', async () => {
  await env.runtime.start(env.spec('frozen', { command: ['sh', '-c', 'trap "exit 0" TERM; sleep 1000 & wait'], resources: { cpuMillis: 250, memoryMiB: 32, pids: 20 } }));
  try {
    const stats = await env.runtime.stats('frozen');
    expect(stats).toMatchObject({ memoryLimitBytes: 32 * 1024 * 1024, cpuQuotaUs: 25000, cpuPeriodUs: 100000, pidsLimit: 20, frozen: false, oomKills: 0 });
    expect(stats.pids).toBeGreaterThanOrEqual(1);
    await env.runtime.freeze('frozen');
    expect((await env.runtime.stats('frozen')).frozen).toBe(true);
    await env.runtime.thaw('frozen');
    expect((await env.runtime.stats('frozen')).frozen).toBe(false);
    await env.runtime.freeze('frozen');
    // SIGTERM reaches a frozen container once stop thaws it: exit 0 from the trap, not SIGKILL.
    expect(await env.runtime.stop('frozen', { timeoutMs: 20_000 })).toMatchObject({ code: 0, signal: null });
  } finally {
    await env.runtime.destroy('frozen');
  }
});
