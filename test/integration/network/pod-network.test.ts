/**
 * PodNetwork.apply on two "hosts" that are network namespaces this test creates, joined by a veth
 * pair (the underlay, 192.168.<n>.1/.2). Each host has a pod subnet, its bridge, and one "pod" (a
 * third namespace on the bridge). host-gw: routes programmed, traffic crosses, withdrawn when the
 * peer leaves the sync, foreign routes untouched, state restored after a restart, older states
 * ignored. wireguard (wireguard-go here: this kernel has no module): ping and TCP across the
 * tunnel. Everything is removed in afterAll, even when a test fails.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { NetworkSyncJob } from '@berth/contracts';
import { execFile } from '@berth/oci';
import { PodNetwork, type Exec } from '@berth/runtime';

jest.setTimeout(90_000);

const id = crypto.randomBytes(2).toString('hex');
const ns = { a: `bpn${id}a`, b: `bpn${id}b`, podA: `bpn${id}pa`, podB: `bpn${id}pb` };
const octet = 100 + (parseInt(id, 16) % 100);
const underlay = { a: `192.168.${octet}.1`, b: `192.168.${octet}.2` };
const cluster = `10.${octet}.0.0/16`;
const cidr = { a: `10.${octet}.0.0/24`, b: `10.${octet}.1.0/24` };
const podIp = { a: `10.${octet}.0.5`, b: `10.${octet}.1.5` };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'berth-podnet-'));

const sh = (args: string[]) => execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }).toString();
const inNs = (n: string): Exec => (file, args, o) => execFile('ip', ['netns', 'exec', n, file, ...args], o);
const ok = async (n: string, args: string[]) => (await inNs(n)(args[0]!, args.slice(1))).code === 0;

// wireguard-go's control socket (/var/run/wireguard/<if>.sock) is per host filesystem, not per
// namespace: two userspace interfaces on one machine need two names.
const wgIf = { a: `bpnwg${id}a`, b: `bpnwg${id}b` };
function net(host: 'a' | 'b', dataDir = path.join(dir, host)): PodNetwork {
  return new PodNetwork({ podCidr: cidr[host], bridge: 'pbr0', dataDir, exec: inNs(ns[host]), wireguardInterface: wgIf[host], wireguardPort: 51820 });
}

const peerOf = (host: 'a' | 'b', key: string | null = null) => ({
  nodeId: host,
  nodeName: `host-${host}`,
  underlay: underlay[host],
  podCidr: cidr[host],
  wireguard: key ? { publicKey: key, port: 51820 } : null,
});
const sync = (peers: NetworkSyncJob['peers'], computedAt: number, mode: NetworkSyncJob['mode'] = 'host-gw'): NetworkSyncJob => ({
  kind: 'network-sync',
  mode,
  clusterCidr: cluster,
  peers,
  projects: {},
  infrastructure: [underlay.a, underlay.b],
  computedAt,
});

/** A pod: a namespace on the host's bridge with an address of its subnet and a default route via .1. */
function addPod(host: 'a' | 'b') {
  const pod = host === 'a' ? ns.podA : ns.podB;
  sh(['ip', 'netns', 'add', pod]);
  sh(['ip', '-n', ns[host], 'link', 'add', 'vpod', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', pod]);
  sh(['ip', '-n', ns[host], 'link', 'set', 'vpod', 'master', 'pbr0', 'up']);
  sh(['ip', '-n', pod, 'addr', 'add', `${podIp[host]}/24`, 'dev', 'eth0']);
  sh(['ip', '-n', pod, 'link', 'set', 'eth0', 'up']);
  sh(['ip', '-n', pod, 'link', 'set', 'lo', 'up']);
  sh(['ip', '-n', pod, 'route', 'add', 'default', 'via', podIp[host].replace(/\.5$/, '.1')]);
}

const ping = (from: string, to: string) => ok(from, ['busybox', 'ping', '-c', '1', '-W', '2', to]);
const routes = (host: 'a' | 'b') => sh(['ip', '-n', ns[host], '-4', 'route', 'show', 'proto', '188']);

beforeAll(() => {
  sh(['ip', 'netns', 'add', ns.a]);
  sh(['ip', 'netns', 'add', ns.b]);
  sh(['ip', 'link', 'add', `bpn${id}x`, 'netns', ns.a, 'type', 'veth', 'peer', 'name', `bpn${id}y`, 'netns', ns.b]);
  sh(['ip', '-n', ns.a, 'addr', 'add', `${underlay.a}/24`, 'dev', `bpn${id}x`]);
  sh(['ip', '-n', ns.b, 'addr', 'add', `${underlay.b}/24`, 'dev', `bpn${id}y`]);
  for (const [n, dev] of [
    [ns.a, `bpn${id}x`],
    [ns.b, `bpn${id}y`],
  ] as const) {
    sh(['ip', '-n', n, 'link', 'set', dev, 'up']);
    sh(['ip', '-n', n, 'link', 'set', 'lo', 'up']);
  }
});

let httpd: ChildProcess | null = null;

afterAll(async () => {
  if (httpd?.pid && httpd.exitCode === null) process.kill(httpd.pid, 'SIGKILL');
  for (const host of ['a', 'b'] as const) await net(host).teardown().catch(() => undefined);
  // Deleting the namespaces removes their interfaces (and so ends any wireguard-go of theirs).
  for (const n of Object.values(ns)) {
    try {
      sh(['ip', 'netns', 'del', n]);
    } catch {
      /* not created */
    }
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('host-gw', () => {
  const a = net('a');
  const b = net('b');

  it('routes each host’s subnet via the other’s underlay: a pod on A reaches a pod on B', async () => {
    const ra = await a.apply(sync([peerOf('b')], 1000));
    const rb = await b.apply(sync([peerOf('a')], 1000));
    expect(ra).toMatchObject({ applied: true, added: [cidr.b], errors: [] });
    expect(rb).toMatchObject({ applied: true, added: [cidr.a], errors: [] });
    expect(routes('a')).toContain(`${cidr.b} via ${underlay.b}`);
    expect(routes('a')).toMatch(/metric 1088/);
    expect(sh(['ip', 'netns', 'exec', ns.a, 'cat', '/proc/sys/net/ipv4/ip_forward']).trim()).toBe('1');
    addPod('a');
    addPod('b');
    expect(await ping(ns.podA, podIp.b)).toBe(true);
    expect(await ping(ns.podB, podIp.a)).toBe(true);
    // Masquerade only for traffic leaving the cluster range.
    expect(sh(['ip', 'netns', 'exec', ns.a, 'iptables', '-t', 'nat', '-S', a.natChain])).toContain(`-s ${cidr.a} ! -d ${cluster} -j MASQUERADE`);
    // Applying the same state again changes nothing.
    expect(await a.apply(sync([peerOf('b')], 1001))).toMatchObject({ added: [], removed: [], errors: [] });
  });

  it('replaces a bridge address that clashes with the node subnet (a bridge from before pod subnets)', async () => {
    const other = new PodNetwork({ podCidr: `10.${octet}.5.0/24`, bridge: 'pbr9', dataDir: path.join(dir, 'old'), exec: inNs(ns.a) });
    sh(['ip', '-n', ns.a, 'link', 'add', 'pbr9', 'type', 'bridge']);
    sh(['ip', '-n', ns.a, 'addr', 'add', `10.${octet}.0.1/16`, 'dev', 'pbr9']);
    // Its own cluster range, so it leaves host A's routes of this test's cluster alone.
    expect(await other.apply({ ...sync([], 1), clusterCidr: `10.${octet}.5.0/24` })).toMatchObject({ applied: true, errors: [] });
    const addrs = sh(['ip', '-n', ns.a, '-4', '-o', 'addr', 'show', 'dev', 'pbr9']);
    expect(addrs).toContain(`10.${octet}.5.1/24`);
    expect(addrs).not.toContain(`10.${octet}.0.1/16`);
    await other.teardown();
    sh(['ip', '-n', ns.a, 'link', 'del', 'pbr9']);
  });

  it('withdraws the route when the peer leaves the sync (DOWN), and never touches routes it did not add', async () => {
    sh(['ip', '-n', ns.a, 'route', 'add', `10.${octet}.9.0/24`, 'via', underlay.b, 'proto', 'static']);
    sh(['ip', '-n', ns.a, 'route', 'add', '10.254.9.0/24', 'via', underlay.b, 'proto', '188', 'metric', '1088']);
    const r = await a.apply(sync([], 2000));
    expect(r).toMatchObject({ removed: [cidr.b], errors: [] });
    expect(routes('a')).not.toContain(cidr.b);
    expect(await ping(ns.podA, podIp.b)).toBe(false);
    const all = sh(['ip', '-n', ns.a, '-4', 'route', 'show']);
    expect(all).toMatch(new RegExp(`10\\.${octet}\\.9\\.0/24 via ${underlay.b.replace(/\./g, '\\.')} dev \\S+ proto static`));
    // Tagged like ours but outside this cluster's range: another cluster's agent on the host.
    expect(all).toContain('10.254.9.0/24');
    sh(['ip', '-n', ns.a, 'route', 'del', `10.${octet}.9.0/24`]);
    sh(['ip', '-n', ns.a, 'route', 'del', '10.254.9.0/24']);
  });

  it('ignores a state older than the last applied one; a restarted agent re-applies the saved state', async () => {
    expect(await a.apply(sync([peerOf('b')], 1500))).toMatchObject({ applied: false });
    expect(routes('a')).not.toContain(cidr.b);
    await a.apply(sync([peerOf('b')], 3000));
    expect(routes('a')).toContain(cidr.b);
    // The node reboots: its routes are gone; a new PodNetwork on the same data dir restores them.
    sh(['ip', '-n', ns.a, 'route', 'del', cidr.b, 'proto', '188', 'metric', '1088']);
    const restarted = net('a');
    expect(await restarted.restore()).toMatchObject({ applied: true, added: [cidr.b] });
    expect(await ping(ns.podA, podIp.b)).toBe(true);
    // And it still refuses anything older than what it restored.
    expect(await restarted.apply(sync([], 2500))).toMatchObject({ applied: false });
  });
});

describe('a larger fleet', () => {
  it('programs and withdraws 50 peers in one sync each (prints how long)', async () => {
    const a = net('a', path.join(dir, 'fleet'));
    const peers = Array.from({ length: 50 }, (_, i) => ({
      nodeId: `n${i}`,
      nodeName: `host-${i}`,
      underlay: `192.168.${octet}.${10 + i}`,
      podCidr: `10.${octet}.${10 + i}.0/24`,
      wireguard: null,
    }));
    let t = Date.now();
    const up = await a.apply(sync(peers, 100_000));
    const upMs = Date.now() - t;
    expect(up.added).toHaveLength(50);
    expect(up.errors).toEqual([]);
    t = Date.now();
    const same = await a.apply(sync(peers, 100_001));
    const sameMs = Date.now() - t;
    expect(same.added).toEqual([]);
    t = Date.now();
    const down = await a.apply(sync([], 100_002));
    const downMs = Date.now() - t;
    expect(down.removed).toHaveLength(50);
    expect(routes('a')).toBe('');
    console.log(`PodNetwork host-gw, 50 peers: add ${upMs} ms, unchanged re-apply ${sameMs} ms, withdraw all ${downMs} ms`);
  });
});

describe('wireguard', () => {
  it('carries pod traffic through an encrypted tunnel (wireguard-go), ping and TCP', async () => {
    const a = net('a');
    const b = net('b');
    const [ka, kb] = [await a.wireguardPublicKey(), await b.wireguardPublicKey()];
    expect(ka).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(fs.statSync(path.join(dir, 'a', 'wireguard.key')).mode & 0o777).toBe(0o600);
    expect(await a.wireguardPublicKey()).toBe(ka); // generated once
    const ra = await a.apply(sync([peerOf('b', kb)], 10_000, 'wireguard'));
    const rb = await b.apply(sync([peerOf('a', ka)], 10_000, 'wireguard'));
    expect(ra).toMatchObject({ applied: true, errors: [] });
    expect(rb).toMatchObject({ applied: true, errors: [] });
    expect(routes('a')).toContain(`${cidr.b} dev ${wgIf.a}`);
    expect(await ping(ns.podA, podIp.b)).toBe(true);
    // TCP: busybox httpd in pod B, fetched from pod A with curl.
    fs.mkdirSync(path.join(dir, 'www'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'www', 'index.html'), 'across the tunnel\n');
    httpd = spawn('ip', ['netns', 'exec', ns.podB, 'busybox', 'httpd', '-f', '-p', '8080', '-h', path.join(dir, 'www')], { stdio: 'ignore' });
    let got = '';
    for (let i = 0; i < 20 && got === ''; i++) {
      got = (await inNs(ns.podA)('curl', ['-s', '-m', '3', `http://${podIp.b}:8080/`])).stdout;
      if (got === '') await new Promise((r) => setTimeout(r, 200));
    }
    expect(got).toBe('across the tunnel\n');
    const dump = sh(['ip', 'netns', 'exec', ns.a, 'wg', 'show', wgIf.a, 'transfer']);
    expect(Number(dump.trim().split('\t')[1])).toBeGreaterThan(0);
    // Back to host-gw: the interface goes, routes go via the underlay again.
    await a.apply(sync([peerOf('b')], 20_000));
    expect(await ok(ns.a, ['ip', 'link', 'show', wgIf.a])).toBe(false);
    expect(routes('a')).toContain(`${cidr.b} via ${underlay.b}`);
  });
});
