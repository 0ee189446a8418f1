import { cgroupLayout, expandSlice, hostCgroupFacts, keyed, parseLimit, readCgroupStats, selectCgroupDriver, systemdSliceFor } from './cgroups';

describe('selectCgroupDriver', () => {
  it('follows systemd being PID 1 on cgroup v2 unless the operator says otherwise', () => {
    expect(selectCgroupDriver(undefined, true, true)).toBe('systemd');
    expect(selectCgroupDriver(undefined, false, true)).toBe('cgroupfs');
    expect(selectCgroupDriver('auto', true, true)).toBe('systemd');
    expect(selectCgroupDriver('', false, false)).toBe('cgroupfs');
    expect(selectCgroupDriver('cgroupfs', true, true)).toBe('cgroupfs');
    expect(selectCgroupDriver('systemd', false, false)).toBe('systemd');
  });
  it('keeps a cgroup v1 host on cgroupfs even under systemd (its OOM counter is not hierarchical)', () => {
    expect(selectCgroupDriver(undefined, true, false)).toBe('cgroupfs');
    expect(selectCgroupDriver('auto', true, false)).toBe('cgroupfs');
  });
  it('reads the host facts from two paths', () => {
    const present = new Set(['/run/systemd/system']);
    expect(hostCgroupFacts((p) => present.has(p))).toEqual({ systemdBooted: true, cgroupV2: false });
  });
  it('names the variable when the value is wrong', () => {
    expect(() => selectCgroupDriver('system', true, true)).toThrow(/BERTH_CGROUP_DRIVER must be cgroupfs, systemd or auto/);
  });
});

describe('systemd slices', () => {
  it('make one slice of the parent path; characters systemd reads as hierarchy are escaped', () => {
    expect(systemdSliceFor('/berth')).toBe('berth.slice');
    expect(systemdSliceFor('/berth/node-1')).toBe('berth-node_1.slice');
    expect(systemdSliceFor('/berth-test-conf/')).toBe('berth_test_conf.slice');
    expect(systemdSliceFor('/berth/n.1 x')).toBe('berth-n_1_x.slice');
    expect(() => systemdSliceFor('/')).toThrow(/no name/);
  });
  it('expand like systemd: every dash prefix is a parent slice', () => {
    expect(expandSlice('berth.slice')).toBe('berth.slice');
    expect(expandSlice('berth-node_1.slice')).toBe('berth.slice/berth-node_1.slice');
    expect(expandSlice('a-b-c.slice')).toBe('a.slice/a-b.slice/a-b-c.slice');
    expect(expandSlice('-.slice')).toBe('');
    expect(() => expandSlice('berth.scope')).toThrow(/not a slice/);
  });
});

describe('cgroupLayout', () => {
  it('cgroupfs: <parent>/<id> for runc and on disk', () => {
    const l = cgroupLayout('cgroupfs', '/berth/n1/');
    expect(l.cgroupsPath('web-1')).toBe('/berth/n1/web-1');
    expect(l.relPath('web-1')).toBe('/berth/n1/web-1');
    expect(l.parentPath).toBe('/berth/n1');
    expect(l.idOf('web-1')).toBe('web-1');
    expect(l.slice).toBeNull();
  });
  it('systemd: a slice per container under the node slice, the scope berth-<id>.scope inside it', () => {
    const l = cgroupLayout('systemd', '/berth/n1');
    expect(l.slice).toBe('berth-n1.slice');
    expect(l.cgroupsPath('web-1')).toBe('berth-n1-web\\x2d1.slice:berth:web-1');
    expect(l.relPath('web-1')).toBe('/berth.slice/berth-n1.slice/berth-n1-web\\x2d1.slice/berth-web-1.scope');
    expect(l.oomDir('web-1')).toBe('/berth.slice/berth-n1.slice/berth-n1-web\\x2d1.slice');
    expect(l.units('web-1')).toEqual(['berth-n1-web\\x2d1.slice']);
    expect(l.parentPath).toBe('/berth.slice/berth-n1.slice');
    expect(l.idOf('berth-n1-web\\x2d1.slice')).toBe('web-1');
    expect(l.idOf('berth-n1-a.b_c.slice')).toBe('a.b_c');
    expect(l.idOf('berth-n1-a-b.slice')).toBeNull(); // a deeper slice, not a container's
    expect(l.idOf('berth-web-1.scope')).toBeNull();
    expect(l.idOf('other.slice')).toBeNull();
  });
  it('cgroupfs: the OOM counter is the container cgroup itself and there are no units', () => {
    const l = cgroupLayout('cgroupfs', '/berth');
    expect(l.oomDir('x')).toBe('/berth/x');
    expect(l.units('x')).toEqual([]);
  });
});

describe('reading cgroup files', () => {
  it('parses limits and keyed files', () => {
    expect(parseLimit('max\n')).toBeNull();
    expect(parseLimit('33554432\n')).toBe(33554432);
    expect(parseLimit(null)).toBeNull();
    expect(keyed('low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n', 'oom_kill')).toBe(1);
    expect(keyed('oom_kill_disable 0\nunder_oom 0\noom_kill 2\n', 'oom_kill')).toBe(2);
    expect(keyed('populated 1\nfrozen 0\n', 'missing')).toBeNull();
  });

  it('v2: one directory, cpu.max quota and period, frozen from cgroup.events', async () => {
    const files: Record<string, string> = {
      'memory.current': '1048576\n',
      'memory.max': '33554432\n',
      'cpu.stat': 'usage_usec 1234\nuser_usec 1000\n',
      'cpu.max': '25000 100000\n',
      'pids.current': '3\n',
      'pids.max': 'max\n',
      'cgroup.events': 'populated 1\nfrozen 1\n',
      'memory.events': 'low 0\nhigh 0\nmax 9\noom 1\noom_kill 1\n',
    };
    const stats = await readCgroupStats(true, async (c, f) => (c === '' ? (files[f] ?? null) : null));
    expect(stats).toEqual({
      memoryBytes: 1048576,
      memoryLimitBytes: 33554432,
      cpuUsageUsec: 1234,
      cpuQuotaUs: 25000,
      cpuPeriodUs: 100000,
      pids: 3,
      pidsLimit: null,
      frozen: true,
      oomKills: 1,
    });
  });

  it('v1: one directory per controller; unlimited quota and memory read as null', async () => {
    const files: Record<string, string> = {
      'memory/memory.usage_in_bytes': '4096\n',
      'memory/memory.limit_in_bytes': '9223372036854771712\n',
      'cpuacct/cpuacct.usage': '5000000\n',
      'cpu/cpu.cfs_quota_us': '-1\n',
      'cpu/cpu.cfs_period_us': '100000\n',
      'pids/pids.current': '2\n',
      'pids/pids.max': '64\n',
      'freezer/freezer.state': 'THAWED\n',
      'memory/memory.oom_control': 'oom_kill_disable 0\nunder_oom 0\noom_kill 0\n',
    };
    const stats = await readCgroupStats(false, async (c, f) => files[`${c}/${f}`] ?? null);
    expect(stats).toEqual({
      memoryBytes: 4096,
      memoryLimitBytes: null,
      cpuUsageUsec: 5000,
      cpuQuotaUs: null,
      cpuPeriodUs: 100000,
      pids: 2,
      pidsLimit: 64,
      frozen: false,
      oomKills: 0,
    });
  });
});
