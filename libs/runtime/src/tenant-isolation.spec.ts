import { gatewayOf, mergeRanges, parseCidr, projectMembers, renderDelta, renderRuleset, type IsolationState } from './tenant-isolation';

const state = (over: Partial<IsolationState> = {}): IsolationState => ({
  clusterCidr: '10.42.0.0/16',
  peers: [{ podCidr: '10.42.2.0/24' }],
  projects: { pa: ['10.42.2.5'], pb: ['10.42.2.6'] },
  infrastructure: ['192.168.50.2'],
  computedAt: 1,
  ...over,
});

describe('address helpers', () => {
  it('parses CIDRs (host bits ignored) and bare addresses', () => {
    expect(parseCidr('10.42.1.7/24')).toEqual([0x0a2a0100, 0x0a2a01ff]);
    expect(parseCidr('1.2.3.4')).toEqual([0x01020304, 0x01020304]);
    expect(() => parseCidr('10.0.0.0/33')).toThrow(/not an IPv4 CIDR/);
    expect(() => parseCidr('10.0.0.300/8')).toThrow(/not an IPv4 address/);
  });

  it('names the bridge gateway (first host) of a subnet', () => {
    expect(gatewayOf('10.42.3.0/24')).toBe('10.42.3.1');
    expect(gatewayOf('10.88.0.0/16')).toBe('10.88.0.1');
  });

  it('merges overlapping and adjacent ranges, since nft refuses overlapping interval elements', () => {
    expect(mergeRanges(['192.168.50.0/24', '192.168.50.2', '169.254.0.0/16', '10.0.0.1', '10.0.0.2', '192.168.51.0/24'])).toEqual([
      '10.0.0.1-10.0.0.2',
      '169.254.0.0-169.254.255.255',
      '192.168.50.0-192.168.51.255',
    ]);
    expect(mergeRanges(['10.42.1.0/24', '10.42.0.0/16'])).toEqual(['10.42.0.0-10.42.255.255']);
  });
});

describe('projectMembers', () => {
  it('takes remote addresses from the sync and local ones only from the agent’s registrations', () => {
    const m = projectMembers({
      localPodCidr: '10.42.1.0/24',
      // The sync claims a local address for pb: ignored (the agent knows its own replicas).
      state: state({ projects: { pa: ['10.42.2.5', '10.42.1.9'], pb: ['10.42.2.6', '10.42.1.5'] } }),
      local: [{ replicaId: 'r1', projectId: 'pa', address: '10.42.1.5' }],
    });
    expect(Object.fromEntries(m)).toEqual({ pa: ['10.42.1.5', '10.42.2.5'], pb: ['10.42.2.6'] });
  });

  it('leaves out addresses two projects claim and local replicas of unknown project (default deny)', () => {
    const warn = jest.fn();
    const m = projectMembers({
      localPodCidr: '10.42.1.0/24',
      state: state({ projects: { pa: ['10.42.2.5', '10.42.2.7'], pb: ['10.42.2.6', '10.42.2.7'] } }),
      local: [{ replicaId: 'old', projectId: null, address: '10.42.1.3' }],
      warn,
    });
    expect(Object.fromEntries(m)).toEqual({ pa: ['10.42.2.5'], pb: ['10.42.2.6'] });
    expect(warn).toHaveBeenCalledWith({ addresses: ['10.42.2.7', '10.42.1.3'] }, expect.stringMatching(/isolated/));
  });
});

describe('renderRuleset', () => {
  it('declares, flushes and refills everything in one script, never deleting the table', () => {
    const index = new Map<string, number>();
    const { script, projects, stale } = renderRuleset({
      table: 'berth_iso_t',
      localPodCidr: '10.42.1.0/24',
      state: state(),
      local: [{ replicaId: 'r1', projectId: 'pa', address: '10.42.1.5' }],
      index,
    });
    expect(script).not.toMatch(/delete/);
    expect(script).toContain('add element inet berth_iso_t cluster { 10.42.0.0-10.42.255.255 }');
    expect(script).toContain('add element inet berth_iso_t gateways { 10.42.1.1, 10.42.2.1 }');
    expect(script).toContain('add element inet berth_iso_t infra { 169.254.0.0-169.254.255.255, 192.168.50.2 }');
    expect(script).toContain('add element inet berth_iso_t p1 { 10.42.1.5, 10.42.2.5 }');
    expect(script).toContain('add element inet berth_iso_t owner { 10.42.1.5 : goto p1, 10.42.2.5 : goto p1, 10.42.2.6 : goto p2 }');
    expect(script).toContain('flush map inet berth_iso_t owner');
    expect(script).toMatch(/add chain inet berth_iso_t forward \{ type filter hook forward/);
    expect(script).toMatch(/add chain inet berth_iso_t input \{ type filter hook input/);
    // Replies to host-opened connections pass before the host/infrastructure drops, never before pod → pod.
    const fromPod = script.split('\n').filter((l) => l.startsWith('add rule inet berth_iso_t from_pod'));
    expect(fromPod.map((l) => l.replace('add rule inet berth_iso_t from_pod ', ''))).toEqual([
      'ip daddr @cluster ip daddr != @gateways goto pod_to_pod',
      'ct state established,related accept',
      'ip daddr @gateways drop',
      'ip daddr @infra drop',
    ]);
    expect(projects.sort()).toEqual([1, 2]);
    expect(stale).toEqual([]);
    expect(Object.fromEntries(index)).toEqual({ pa: 1, pb: 2 });
  });

  it('keeps project numbers stable and empties the chains of projects that are gone', () => {
    const index = new Map([
      ['pa', 1],
      ['pb', 2],
    ]);
    const { script, projects, stale } = renderRuleset({
      table: 't',
      localPodCidr: '10.42.1.0/24',
      state: state({ projects: { pb: ['10.42.2.6'], pc: ['10.42.2.8'] } }),
      local: [],
      index,
      present: [1, 2],
    });
    expect(Object.fromEntries(index)).toEqual({ pa: 1, pb: 2, pc: 3 });
    expect(projects.sort()).toEqual([2, 3]);
    expect(stale).toEqual([1]);
    expect(script).toContain('flush set inet t p1');
    expect(script).not.toContain('add element inet t p1 ');
    expect(script).toContain('add element inet t owner { 10.42.2.6 : goto p2, 10.42.2.8 : goto p3 }');
  });

  it('before any sync, treats the local subnet as the pod range and denies every pod → pod', () => {
    const { script } = renderRuleset({ table: 't', localPodCidr: '10.88.0.0/16', state: null, local: [], index: new Map() });
    expect(script).toContain('add element inet t cluster { 10.88.0.0-10.88.255.255 }');
    expect(script).toContain('add element inet t gateways { 10.88.0.1 }');
    expect(script).not.toContain('add element inet t owner');
  });
});

describe('renderDelta', () => {
  it('deletes and adds only the addresses whose project changed, in one script', () => {
    const before = new Map([
      ['10.42.1.5', 1],
      ['10.42.1.6', 1],
      ['10.42.2.7', 2],
    ]);
    const after = new Map([
      ['10.42.1.5', 1],
      ['10.42.2.7', 1],
      ['10.42.1.8', 2],
    ]);
    expect(renderDelta('t', before, after).trim().split('\n')).toEqual([
      'delete element inet t owner { 10.42.1.6 }',
      'delete element inet t p1 { 10.42.1.6 }',
      'delete element inet t owner { 10.42.2.7 }',
      'delete element inet t p2 { 10.42.2.7 }',
      'add element inet t p1 { 10.42.2.7 }',
      'add element inet t owner { 10.42.2.7 : goto p1 }',
      'add element inet t p2 { 10.42.1.8 }',
      'add element inet t owner { 10.42.1.8 : goto p2 }',
    ]);
    expect(renderDelta('t', after, new Map(after))).toBe('');
  });

  it('renderRuleset reports the owner map and a base key that changes only with the ranges', () => {
    const input = { table: 't', localPodCidr: '10.42.1.0/24', local: [], index: new Map<string, number>() };
    const a = renderRuleset({ ...input, state: state() });
    const b = renderRuleset({ ...input, state: state({ projects: { pa: ['10.42.2.9'] } }) });
    const c = renderRuleset({ ...input, state: state({ infrastructure: ['192.168.50.3'] }) });
    expect(Object.fromEntries(a.owner)).toEqual({ '10.42.2.5': 1, '10.42.2.6': 2 });
    expect(a.base).toBe(b.base);
    expect(a.base).not.toBe(c.base);
  });
});
