/**
 * The CNI network part on its own: add/del cycles on a deliberately small subnet, so a leaked lease
 * exhausts it within the test, and a count of namespaces, veths and leases after every cycle batch.
 * (bench/start runs 1,000 cycles.)
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { CniNetwork } from '@berth/runtime';

jest.setTimeout(60_000);

const dir = mkdtempSync('/var/tmp/berth-rt-cni-');
// /26: 61 usable addresses — 100 cycles only succeed if every DEL releases its lease.
const net = new CniNetwork({ bridge: 'brt15', subnet: '10.201.15.0/26', dataDir: join(dir, 'cni'), netnsPrefix: 'brt15-', networkName: 'brt15' });

afterAll(async () => {
  for (const id of await net.listNamespaces()) await net.del(id).catch(() => undefined);
  await net.removeBridge();
  rmSync(dir, { recursive: true, force: true });
});

async function leftovers() {
  return { netns: await net.listNamespaces(), veths: await net.listBridgePorts(), leases: await net.listLeases() };
}

it('attaches eth0 with an address from the subnet and lo inside a named namespace', async () => {
  const att = await net.add('probe');
  try {
    expect(att.netnsPath).toBe('/run/netns/brt15-probe');
    expect(att.address).toMatch(/^10\.201\.15\.\d+$/);
    expect(att.gateway).toBe('10.201.15.1');
    const addr = execFileSync('ip', ['-n', att.netnsName, '-4', '-o', 'addr', 'show']).toString();
    expect(addr).toContain(`eth0    inet ${att.address}/26`);
    expect(addr).toMatch(/lo\s+inet 127\.0\.0\.1/);
    expect(await net.listLeases()).toEqual([{ address: att.address, id: 'probe' }]);
    expect(await net.listBridgePorts()).toHaveLength(1);
  } finally {
    await net.del('probe');
  }
  expect(await leftovers()).toEqual({ netns: [], veths: [], leases: [] });
  await net.del('probe'); // idempotent
});

it('100 add/del cycles leak no namespace, veth or lease', async () => {
  const seen = new Set<string>();
  for (let i = 0; i < 100; i++) {
    const id = `cycle-${i}`;
    const att = await net.add(id);
    seen.add(att.address);
    await net.del(id);
    if (i % 25 === 24) expect(await leftovers()).toEqual({ netns: [], veths: [], leases: [] });
  }
  expect(seen.size).toBeLessThanOrEqual(61);
  expect(await leftovers()).toEqual({ netns: [], veths: [], leases: [] });
});

it('a broken plugin setup fails with a clear error and leaves no namespace', async () => {
  const broken = new CniNetwork({ pluginDir: join(dir, 'no-plugins'), bridge: 'brt15', subnet: '10.201.15.0/26', dataDir: join(dir, 'cni'), netnsPrefix: 'brt15-', networkName: 'brt15' });
  const err = await broken.add('broken').catch((e) => e);
  expect(String(err.message)).toMatch(/ENOENT|no-plugins/);
  expect(await net.listNamespaces()).toEqual([]);
  expect(() => new CniNetwork({ dataDir: dir, subnet: 'not-a-cidr' })).toThrow(/not an IPv4 CIDR/);
  expect(() => new CniNetwork({ dataDir: dir, bridge: 'a-very-long-bridge-name' })).toThrow(/15 characters/);
});
