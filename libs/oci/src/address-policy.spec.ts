import { checkAddress, classifyAddress, DEFAULT_REGISTRY_ALLOW, parseAllowList, parseIp, type AddressRule } from './address-policy';

describe('classifyAddress', () => {
  const cases: [string, AddressRule][] = [
    // IPv4
    ['8.8.8.8', 'public'],
    ['1.1.1.1', 'public'],
    ['0.0.0.0', 'unspecified'],
    ['0.1.2.3', 'unspecified'],
    ['127.0.0.1', 'loopback'],
    ['127.255.255.254', 'loopback'],
    ['169.254.0.1', 'link-local'],
    ['169.254.255.255', 'link-local'],
    ['169.254.169.254', 'metadata'],
    ['169.254.170.2', 'metadata'],
    ['100.100.100.200', 'metadata'],
    ['168.63.129.16', 'metadata'],
    ['10.0.0.1', 'private'],
    ['10.255.255.255', 'private'],
    ['172.16.0.1', 'private'],
    ['172.31.255.255', 'private'],
    ['172.15.255.255', 'public'],
    ['172.32.0.0', 'public'],
    ['192.168.1.1', 'private'],
    ['192.169.0.1', 'public'],
    ['100.64.0.1', 'cgnat'],
    ['100.127.255.255', 'cgnat'],
    ['100.128.0.0', 'public'],
    ['224.0.0.1', 'multicast'],
    ['239.255.255.250', 'multicast'],
    ['255.255.255.255', 'broadcast'],
    ['240.0.0.1', 'reserved'],
    ['192.0.2.10', 'reserved'],
    // IPv6
    ['2606:4700:4700::1111', 'public'],
    ['::', 'unspecified'],
    ['::1', 'loopback'],
    ['[::1]', 'loopback'],
    ['fe80::1', 'link-local'],
    ['fe80::1%eth0', 'link-local'],
    ['febf:ffff::1', 'link-local'],
    ['fec0::1', 'private'],
    ['fd00:ec2::254', 'metadata'],
    ['fd00::1', 'private'],
    ['fc00::1', 'private'],
    ['ff02::1', 'multicast'],
    ['2001:db8::1', 'reserved'],
    // IPv4 inside IPv6: the embedded address decides
    ['::ffff:127.0.0.1', 'loopback'],
    ['::ffff:7f00:1', 'loopback'],
    ['::ffff:169.254.169.254', 'metadata'],
    ['::ffff:10.1.2.3', 'private'],
    ['::ffff:8.8.8.8', 'public'],
    ['::ffff:0.0.0.0', 'unspecified'],
    ['64:ff9b::a9fe:a9fe', 'metadata'],
    ['2002:7f00:1::', 'loopback'],
    ['::127.0.0.1', 'reserved'],
  ];
  it.each(cases)('%s is %s', (ip, rule) => {
    expect(classifyAddress(ip)).toBe(rule);
  });

  it('refuses what is not an IP address', () => {
    for (const bad of ['localhost', '1.2.3', '1.2.3.4.5', '256.0.0.1', '01.2.3.4', '1::2::3', '12345::', 'g::1', '1:2:3:4:5:6:7:8:9']) {
      expect(parseIp(bad)).toBeUndefined();
    }
    expect(() => classifyAddress('example.com')).toThrow(/not an IP address/);
  });
});

describe('checkAddress', () => {
  const defaults = parseAllowList(DEFAULT_REGISTRY_ALLOW);
  const check = (host: string, port: number, address: string, policy = defaults) => checkAddress(policy, { host, port, address });

  it('lets public addresses through, whatever the name', () => {
    expect(check('ghcr.io', 443, '140.82.112.33')).toBeUndefined();
    expect(check('registry.example', 443, '2606:4700::1')).toBeUndefined();
  });

  it('refuses loopback, private, link-local and metadata by default, naming the rule', () => {
    expect(check('localhost', 1, '127.0.0.1')).toMatchObject({ rule: 'loopback', message: expect.stringMatching(/localhost:1 \(resolved to 127\.0\.0\.1\).*rule: loopback.*BERTH_REGISTRY_ALLOW_PRIVATE/) });
    expect(check('127.0.0.1', 5001, '127.0.0.1')?.rule).toBe('loopback');
    expect(check('10.0.0.5', 5000, '10.0.0.5')?.rule).toBe('private');
    expect(check('169.254.169.254', 80, '169.254.169.254')).toMatchObject({ rule: 'metadata', message: expect.stringMatching(/only by its CIDR/) });
    expect(check('evil.example', 443, '169.254.1.1')?.rule).toBe('link-local');
    expect(check('evil.example', 443, '::ffff:127.0.0.1')?.rule).toBe('loopback');
    expect(check('evil.example', 443, '100.64.1.1')?.rule).toBe('cgnat');
  });

  it('keeps the local registry (127.0.0.1:5000, localhost:5000) allowed by default, on that port only', () => {
    expect(check('127.0.0.1', 5000, '127.0.0.1')).toBeUndefined();
    expect(check('localhost', 5000, '127.0.0.1')).toBeUndefined();
    expect(check('localhost', 5000, '::1')).toBeUndefined();
    expect(check('localhost', 5001, '::1')?.rule).toBe('loopback');
    // A host entry does not open link-local or metadata addresses, even if the name points there.
    expect(check('localhost', 5000, '169.254.169.254')?.rule).toBe('metadata');
  });

  it('never connects to unspecified, multicast or broadcast addresses, even when a CIDR covers them', () => {
    const all = parseAllowList(['0.0.0.0/0', '::/0']);
    expect(check('0.0.0.0', 5000, '0.0.0.0', all)).toMatchObject({ rule: 'unspecified', message: expect.stringMatching(/never/) });
    expect(check('x', 1, '::', all)?.rule).toBe('unspecified');
    expect(check('x', 1, '224.0.0.1', all)?.rule).toBe('multicast');
    expect(check('x', 1, '255.255.255.255', all)?.rule).toBe('broadcast');
    expect(check('x', 1, '169.254.169.254', all)).toBeUndefined();
  });

  it('opens what an admin lists: CIDRs (any rule inside them) and host[:port] (loopback, private, CGNAT)', () => {
    const p = parseAllowList(['10.0.0.0/8', 'fd00::/8', '192.168.1.7', 'registry.lan', 'mirror.lan:5000', '[::1]:5001', '169.254.169.254/32']);
    expect(check('a', 1, '10.9.8.7', p)).toBeUndefined();
    expect(check('a', 1, '::ffff:10.9.8.7', p)).toBeUndefined();
    expect(check('a', 1, 'fd12::1', p)).toBeUndefined();
    expect(check('a', 1, '192.168.1.7', p)).toBeUndefined();
    expect(check('a', 1, '192.168.1.8', p)?.rule).toBe('private');
    expect(check('registry.lan', 443, '172.20.0.3', p)).toBeUndefined();
    expect(check('REGISTRY.LAN.', 8443, '127.0.0.1', p)).toBeUndefined();
    expect(check('registry.lan', 443, '169.254.10.10', p)?.rule).toBe('link-local');
    expect(check('mirror.lan', 5000, '10.1.1.1', p)).toBeUndefined();
    expect(check('mirror.lan', 5001, '172.20.1.1', p)?.rule).toBe('private');
    expect(check('::1', 5001, '::1', p)).toBeUndefined();
    expect(check('0:0::1', 5001, '::1', p)).toBeUndefined();
    expect(check('::1', 5000, '::1', p)?.rule).toBe('loopback');
    expect(check('a', 80, '169.254.169.254', p)).toBeUndefined();
  });

  it('refuses bad allow-list entries, naming them', () => {
    expect(() => parseAllowList(['10.0.0.0/33'])).toThrow(/'10\.0\.0\.0\/33' is not a CIDR/);
    expect(() => parseAllowList(['nope/8'])).toThrow(/not a CIDR/);
    expect(() => parseAllowList(['host:99999'])).toThrow(/'host:99999' is neither/);
    expect(() => parseAllowList(['reg_istry'])).toThrow(/neither a CIDR nor a host/);
    expect(parseAllowList([' ', '']).allow).toEqual([]);
  });
});
