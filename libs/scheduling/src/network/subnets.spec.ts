import { cidrContains, cidrsOverlap, parseCidr } from './ipv4';
import { allocatePodSubnet, podRangeProblem, podSubnetCount } from './subnets';

const range = { clusterCidr: '10.88.0.0/16', nodeMask: 24 };

describe('pod subnet allocation', () => {
  it('hands out the first free /24 in address order', () => {
    expect(allocatePodSubnet(range, [])).toBe('10.88.0.0/24');
    expect(allocatePodSubnet(range, ['10.88.0.0/24'])).toBe('10.88.1.0/24');
    // A freed subnet (its node was deleted) is the first to be handed out again.
    expect(allocatePodSubnet(range, ['10.88.0.0/24', '10.88.2.0/24'])).toBe('10.88.1.0/24');
  });
  it('ignores taken subnets outside the range (a node from an earlier cluster range keeps its own)', () => {
    expect(allocatePodSubnet(range, ['10.240.0.0/24'])).toBe('10.88.0.0/24');
  });
  it('returns null when every subnet is taken', () => {
    const all = Array.from({ length: 256 }, (_, i) => `10.88.${i}.0/24`);
    expect(allocatePodSubnet(range, all)).toBeNull();
    expect(allocatePodSubnet(range, all.slice(0, 255))).toBe('10.88.255.0/24');
    expect(allocatePodSubnet({ clusterCidr: '10.0.0.0/30', nodeMask: 30 }, ['10.0.0.0/30'])).toBeNull();
  });
  it('works for other sizes', () => {
    expect(podSubnetCount({ clusterCidr: '10.0.0.0/8', nodeMask: 24 })).toBe(65_536);
    expect(allocatePodSubnet({ clusterCidr: '172.16.0.0/12', nodeMask: 26 }, ['172.16.0.0/26'])).toBe('172.16.0.64/26');
    expect(allocatePodSubnet({ clusterCidr: '10.200.0.0/16', nodeMask: 16 }, [])).toBe('10.200.0.0/16');
  });
  it('refuses a range that cannot be split as asked, with a message', () => {
    expect(podRangeProblem({ clusterCidr: '10.88.0.0/16', nodeMask: 12 })).toMatch(/between/);
    expect(podRangeProblem({ clusterCidr: '10.88.0.0/16', nodeMask: 31 })).toMatch(/\/30/);
    expect(podRangeProblem({ clusterCidr: '10.88.1.0/16', nodeMask: 24 })).toMatch(/host bits/);
    expect(podRangeProblem({ clusterCidr: 'ten', nodeMask: 24 })).toMatch(/not an IPv4 CIDR/);
    expect(podRangeProblem(range)).toBeNull();
    expect(() => allocatePodSubnet({ clusterCidr: '10.88.0.0/16', nodeMask: 8 }, [])).toThrow(/between/);
  });
});

describe('ipv4 helpers', () => {
  it('parses, contains and overlaps', () => {
    expect(parseCidr('10.88.3.0/24')).toEqual({ network: (10 << 24) + (88 << 16) + (3 << 8), prefix: 24 });
    expect(() => parseCidr('10.88.3.300/24')).toThrow();
    expect(cidrContains('10.88.0.0/16', '10.88.200.7')).toBe(true);
    expect(cidrContains('10.88.0.0/16', '10.89.0.1')).toBe(false);
    expect(cidrContains('0.0.0.0/0', '1.2.3.4')).toBe(true);
    expect(cidrsOverlap('10.88.0.0/16', '10.88.5.0/24')).toBe(true);
    expect(cidrsOverlap('10.88.0.0/24', '10.88.1.0/24')).toBe(false);
  });
});
