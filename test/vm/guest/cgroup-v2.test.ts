/**
 * Runs only inside the cgroup v2 guest (test/vm/cgroup-v2.test.ts boots it): the runc runtime on a
 * cgroup v2 kernel, with the cgroup driver the guest's PID 1 implies (cgroupfs under a plain init,
 * systemd when systemd is PID 1). Limits land in cpu.max / memory.max / pids.max, an OOM kill is
 * read from memory.events, freezing goes through cgroup.freeze, and every cgroup is gone after
 * destroy and gc.
 */
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createTestEnv, eventually, leakReport, TestEnv } from '../../integration/runtime/fixture';

jest.setTimeout(90_000);

let env: TestEnv;
let leaks: string[] = [];
const expectedDriver = process.env.BERTH_VM_EXPECT_DRIVER ?? 'cgroupfs';

beforeAll(() => {
  if (!existsSync('/sys/fs/cgroup/cgroup.controllers')) throw new Error('not a cgroup v2 host: this file runs inside the VM guest only');
  env = createTestEnv('v2', 40);
});
afterAll(async () => {
  if (env) leaks = await env.teardown();
  expect(leaks).toEqual([]);
  // The parent (directory or systemd slice) is gone too.
  if (env) expect(existsSync(join('/sys/fs/cgroup', env.runtime.cgroups.parentPath))).toBe(false);
});

const read = (id: string, file: string) => readFileSync(join(env.runtime.cgroupDir(id), file), 'utf8').trim();

it('uses cgroup v2 and the driver PID 1 implies', () => {
  expect(env.runtime.cgroupV2).toBe(true);
  expect(env.runtime.cgroupDriver).toBe(expectedDriver);
  expect(existsSync('/run/systemd/system')).toBe(expectedDriver === 'systemd');
});

it('cpu, memory and pids limits land in cpu.max, memory.max and pids.max; stats read them back', async () => {
  const h = await env.runtime.start(env.spec('limits', { command: ['sleep', '1000'], resources: { cpuMillis: 250, memoryMiB: 32, pids: 20 } }));
  try {
    const dir = env.runtime.cgroupDir('limits');
    if (expectedDriver === 'systemd') expect(dir).toMatch(/\.slice\/berth-limits\.scope$/);
    else expect(dir).toBe(join('/sys/fs/cgroup', env.runtime.cgroupParent, 'limits'));
    // The container's init is in exactly that cgroup.
    expect(readFileSync(`/proc/${h.pid}/cgroup`, 'utf8').trim()).toBe(`0::${env.runtime.cgroups.relPath('limits')}`);
    expect(read('limits', 'cpu.max')).toBe('25000 100000');
    expect(read('limits', 'memory.max')).toBe(String(32 * 1024 * 1024));
    expect(read('limits', 'memory.swap.max')).toBe('0');
    expect(read('limits', 'pids.max')).toBe('20');
    const stats = await env.runtime.stats('limits');
    expect(stats).toMatchObject({ memoryLimitBytes: 32 * 1024 * 1024, cpuQuotaUs: 25000, cpuPeriodUs: 100000, pidsLimit: 20, frozen: false, oomKills: 0 });
    expect(stats.pids).toBeGreaterThanOrEqual(1);
    expect(stats.memoryBytes).toBeGreaterThan(0);
    expect(stats.cpuUsageUsec).toBeGreaterThan(0);
  } finally {
    await env.runtime.destroy('limits');
  }
  expect(existsSync(env.runtime.cgroupDir('limits'))).toBe(false);
});

it('an OOM kill is read from memory.events: exit 137 and oomKilled', async () => {
  await env.runtime.start(env.spec('oom', { command: ['sh', '-c', 'x=aaaaaaaa; while :; do x=$x$x; done'], resources: { cpuMillis: 1000, memoryMiB: 8, pids: 16 } }));
  try {
    expect(await env.runtime.wait('oom')).toMatchObject({ code: 137, signal: 'SIGKILL', oomKilled: true });
  } finally {
    await env.runtime.destroy('oom');
  }
});

it('pids.max caps a process storm; pids.events counts the refusals', async () => {
  // The storm runs in a child shell (a failed fork ends a non-interactive busybox sh); the
  // container's init survives it and keeps the cgroup populated.
  const storm = 'sh -c \'i=0; while [ $i -lt 40 ]; do sleep 1000 & i=$((i+1)); done\' 2>/dev/null; exec sleep 1000';
  await env.runtime.start(env.spec('pids', { command: ['sh', '-c', storm], resources: { cpuMillis: 500, memoryMiB: 32, pids: 10 } }));
  try {
    const refused = await eventually(async () => {
      const events = Number(/^max (\d+)$/m.exec(read('pids', 'pids.events'))?.[1] ?? 0);
      return events > 0 ? events : null;
    }, 60_000, 200);
    expect(refused).toBeGreaterThan(0);
    const stats = await env.runtime.stats('pids');
    expect(stats.pids).toBeLessThanOrEqual(10);
    expect(stats.pids).toBeGreaterThan(5);
  } finally {
    await env.runtime.destroy('pids');
  }
});

it('freeze writes cgroup.freeze and the cgroup reports frozen; thaw and stop still work', async () => {
  await env.runtime.start(env.spec('frz', { command: ['sh', '-c', 'trap "exit 0" TERM; sleep 1000 & wait'] }));
  try {
    await env.runtime.freeze('frz');
    expect(read('frz', 'cgroup.freeze')).toBe('1');
    expect(read('frz', 'cgroup.events')).toMatch(/^frozen 1$/m);
    expect((await env.runtime.stats('frz')).frozen).toBe(true);
    expect((await env.runtime.inspect('frz')).status).toBe('running');
    await env.runtime.thaw('frz');
    expect(read('frz', 'cgroup.freeze')).toBe('0');
    expect((await env.runtime.stats('frz')).frozen).toBe(false);
    // A frozen container still stops on SIGTERM: stop thaws it after signalling.
    await env.runtime.freeze('frz');
    expect(await env.runtime.stop('frz', { timeoutMs: 60_000 })).toMatchObject({ code: 0, signal: null });
  } finally {
    await env.runtime.destroy('frz');
  }
});

it('gc removes the cgroup of a container whose record was lost (agent crashed mid-start)', async () => {
  await env.runtime.start(env.spec('lost', { command: ['sleep', '1000'] }));
  const dir = env.runtime.cgroupDir('lost');
  expect(existsSync(dir)).toBe(true);
  await fs.rm(join(env.runtime.stateDir, 'containers', 'lost', 'record.json'));
  expect(await env.runtime.gc()).toContain('lost');
  expect(existsSync(dir)).toBe(false);
  expect(await leakReport(env.runtime, env.network)).toEqual([]);
});
