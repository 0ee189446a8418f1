/**
 * TenantIsolation with the real kernel (nf_tables, br_netfilter, conntrack) in scratch network
 * namespaces, no runc: two "hosts" (namespaces with a pod bridge each, routed to each other over an
 * underlay link, host-gw style), pods as namespaces on the bridges, and an "outside" namespace
 * behind host A that also holds the metadata address 169.254.169.254.
 *
 *   host A (10.77.1.0/24 on br0, underlay 192.168.77.1)    host B (10.77.2.0/24, underlay 192.168.77.2)
 *     a1 .10 X   a2 .11 X   b1 .12 Y   b2 .13 Y               c1 .10 X   d1 .11 Y
 *   outside (198.51.100.2, 169.254.169.254) ── host A
 *
 * Every namespace runs a TCP listener on :7000; "OPEN" means a connection was accepted within the
 * timeout. Everything lives in namespaces this file creates; they go (with their tables) in afterAll.
 */
import { spawn, type ChildProcess, execFile as execFileCb } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { TenantIsolation, type IsolationState } from '@berth/runtime';

jest.setTimeout(180_000);

const run = promisify(execFileCb);
const P = `bti${process.pid % 100000}`;
const ns = (n: string) => `${P}-${n}`;
const dir = mkdtempSync('/var/tmp/berth-iso-');
const procs: ChildProcess[] = [];
const created: string[] = [];

const X = 'project-x';
const Y = 'project-y';
const PODS = {
  a1: { host: 'hA', ip: '10.77.1.10', project: X },
  a2: { host: 'hA', ip: '10.77.1.11', project: X },
  b1: { host: 'hA', ip: '10.77.1.12', project: Y },
  b2: { host: 'hA', ip: '10.77.1.13', project: Y },
  c1: { host: 'hB', ip: '10.77.2.10', project: X },
  d1: { host: 'hB', ip: '10.77.2.11', project: Y },
} as const;
type Pod = keyof typeof PODS;
const HOSTS = { hA: { subnet: '10.77.1.0/24', gw: '10.77.1.1', underlay: '192.168.77.1' }, hB: { subnet: '10.77.2.0/24', gw: '10.77.2.1', underlay: '192.168.77.2' } } as const;
const OUTSIDE = '198.51.100.2';
const METADATA = '169.254.169.254';

const sh = async (n: string, ...args: string[]) => {
  await run('ip', ['-n', ns(n), ...args]);
};
const inNs = (n: string, cmd: string, args: string[]) => run('ip', ['netns', 'exec', ns(n), cmd, ...args]);

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function addNs(n: string) {
  await run('ip', ['netns', 'add', ns(n)]);
  created.push(ns(n));
  await sh(n, 'link', 'set', 'lo', 'up');
}

function listen(n: string, args: string[]): ChildProcess {
  const p = spawn('ip', ['netns', 'exec', ns(n), 'socat', ...args], { stdio: 'ignore', detached: true });
  procs.push(p);
  return p;
}

/** Does a TCP connection from namespace `from` to ip:port get accepted within 1.5 s? */
async function connect(from: string, ip: string, port = 7000): Promise<'OPEN' | 'CLOSED'> {
  const r = await inNs(from, 'socat', ['-u', 'OPEN:/dev/null', `TCP:${ip}:${port},connect-timeout=1.5`]).then(
    () => true,
    () => false,
  );
  return r ? 'OPEN' : 'CLOSED';
}

const isolation = {
  hA: new TenantIsolation({ localPodCidr: HOSTS.hA.subnet, bridge: 'br0', netns: ns('hA') }),
  hB: new TenantIsolation({ localPodCidr: HOSTS.hB.subnet, bridge: 'br0', netns: ns('hB') }),
};

function syncState(computedAt: number, over: Partial<IsolationState> = {}): IsolationState {
  const projects: Record<string, string[]> = {};
  for (const p of Object.values(PODS)) (projects[p.project] ??= []).push(p.ip);
  return {
    clusterCidr: '10.77.0.0/16',
    peers: [{ podCidr: HOSTS.hA.subnet }, { podCidr: HOSTS.hB.subnet }],
    projects,
    infrastructure: [HOSTS.hA.underlay, HOSTS.hB.underlay],
    computedAt,
    ...over,
  };
}

beforeAll(async () => {
  // Namespaces of an earlier run of this file that was killed before its afterAll (its pid is gone).
  for (const line of (await run('ip', ['netns', 'list'])).stdout.split('\n')) {
    const m = /^(bti(\d+)-\S+)/.exec(line);
    if (m && !alive(Number(m[2]))) await run('ip', ['netns', 'delete', m[1]!]).catch(() => undefined);
  }
  for (const h of ['hA', 'hB'] as const) {
    await addNs(h);
    await sh(h, 'link', 'add', 'br0', 'type', 'bridge');
    await sh(h, 'addr', 'add', `${HOSTS[h].gw}/24`, 'dev', 'br0');
    await sh(h, 'link', 'set', 'br0', 'up');
    await inNs(h, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1']);
  }
  // Underlay: host A ↔ host B, each routing the other's pod subnet through its underlay address.
  await sh('hA', 'link', 'add', 'ul0', 'type', 'veth', 'peer', 'name', 'ul0', 'netns', ns('hB'));
  for (const h of ['hA', 'hB'] as const) {
    await sh(h, 'addr', 'add', `${HOSTS[h].underlay}/24`, 'dev', 'ul0');
    await sh(h, 'link', 'set', 'ul0', 'up');
  }
  await sh('hA', 'route', 'add', HOSTS.hB.subnet, 'via', HOSTS.hB.underlay);
  await sh('hB', 'route', 'add', HOSTS.hA.subnet, 'via', HOSTS.hA.underlay);
  await sh('hB', 'route', 'add', 'default', 'via', HOSTS.hA.underlay);
  // The outside world (and a metadata address) behind host A.
  await addNs('ext');
  await sh('hA', 'link', 'add', 'ex0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns('ext'));
  await sh('hA', 'addr', 'add', '198.51.100.1/24', 'dev', 'ex0');
  await sh('hA', 'link', 'set', 'ex0', 'up');
  await sh('hA', 'route', 'add', `${METADATA}/32`, 'via', OUTSIDE);
  await sh('ext', 'addr', 'add', `${OUTSIDE}/24`, 'dev', 'eth0');
  await sh('ext', 'addr', 'add', `${METADATA}/32`, 'dev', 'eth0');
  await sh('ext', 'link', 'set', 'eth0', 'up');
  await sh('ext', 'route', 'add', 'default', 'via', '198.51.100.1');
  for (const name of Object.keys(PODS) as Pod[]) await addPod(name, PODS[name].host, PODS[name].ip);
  for (const n of ['hA', 'hB', 'ext', ...Object.keys(PODS)]) listen(n, ['-u', 'TCP-LISTEN:7000,reuseaddr,fork', 'OPEN:/dev/null']);
  // Listeners up (bounded wait): every pod reaches its own host before any rule exists.
  for (let i = 0; i < 50 && (await connect('hA', PODS.b2.ip)) !== 'OPEN'; i++) await new Promise((r) => setTimeout(r, 100));
});

async function addPod(name: string, host: 'hA' | 'hB', ip: string) {
  await addNs(name);
  const veth = `v-${name}`;
  await sh(host, 'link', 'add', veth, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns(name));
  await sh(host, 'link', 'set', veth, 'master', 'br0', 'up');
  await sh(name, 'addr', 'add', `${ip}/24`, 'dev', 'eth0');
  await sh(name, 'link', 'set', 'eth0', 'up');
  await sh(name, 'route', 'add', 'default', 'via', HOSTS[host].gw);
}

afterAll(async () => {
  for (const p of procs) {
    try {
      if (p.pid) process.kill(-p.pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  for (const i of Object.values(isolation)) await i.uninstall().catch(() => undefined);
  // Deleting a namespace takes its interfaces and nft tables with it.
  for (const n of created.reverse()) await run('ip', ['netns', 'delete', n]).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
  const left = (await run('ip', ['netns', 'list'])).stdout.split('\n').filter((l) => l.startsWith(`${P}-`));
  expect(left).toEqual([]);
});

/** Runs the checks at once (each may wait out its timeout). */
async function all(checks: Record<string, Promise<string>>): Promise<Record<string, string>> {
  const keys = Object.keys(checks);
  const values = await Promise.all(Object.values(checks));
  return Object.fromEntries(keys.map((k, i) => [k, values[i]]));
}

/** Every (from, to) pair among the pods: OPEN exactly when both are in the same project. */
async function podMatrix(): Promise<{ got: Record<string, string>; want: Record<string, string> }> {
  const pairs = (Object.keys(PODS) as Pod[]).flatMap((f) => (Object.keys(PODS) as Pod[]).filter((t) => t !== f).map((t) => [f, t] as const));
  const got: Record<string, string> = {};
  const want: Record<string, string> = {};
  await Promise.all(
    pairs.map(async ([f, t]) => {
      got[`${f}→${t}`] = await connect(f, PODS[t].ip);
      want[`${f}→${t}`] = PODS[f].project === PODS[t].project ? 'OPEN' : 'CLOSED';
    }),
  );
  return { got, want };
}

it('without isolation every pod reaches every other pod and the hosts (the baseline the rules change)', async () => {
  expect(await connect('a1', PODS.b1.ip)).toBe('OPEN');
  expect(await connect('b1', PODS.c1.ip)).toBe('OPEN');
  expect(await connect('a1', HOSTS.hA.gw)).toBe('OPEN');
  expect(await connect('c1', HOSTS.hA.underlay)).toBe('OPEN');
  expect(await connect('a1', METADATA)).toBe('OPEN');
});

it('pods reach only their own project, on one bridge and across hosts, both ways', async () => {
  for (const [h, i] of Object.entries(isolation)) {
    await i.install();
    for (const [name, p] of Object.entries(PODS)) if (p.host === h) await i.attached({ replicaId: name, projectId: p.project, address: p.ip });
    await i.apply(syncState(1));
  }
  const { got, want } = await podMatrix();
  expect(got).toEqual(want);
});

it('pods cannot reach host services (own host, other host, gateways) nor metadata, but reach the outside', async () => {
  const checks = await all({
    'a1→own gateway': connect('a1', HOSTS.hA.gw),
    'a1→own underlay': connect('a1', HOSTS.hA.underlay),
    'a1→other host underlay': connect('a1', HOSTS.hB.underlay),
    'a1→other gateway': connect('a1', HOSTS.hB.gw),
    'c1→host A underlay': connect('c1', HOSTS.hA.underlay),
    'c1→own gateway': connect('c1', HOSTS.hB.gw),
    'a1→metadata': connect('a1', METADATA),
    'c1→metadata': connect('c1', METADATA),
    'a1→outside': connect('a1', OUTSIDE),
    'd1→outside': connect('d1', OUTSIDE),
  });
  expect(checks).toEqual({
    'a1→own gateway': 'CLOSED',
    'a1→own underlay': 'CLOSED',
    'a1→other host underlay': 'CLOSED',
    'a1→other gateway': 'CLOSED',
    'c1→host A underlay': 'CLOSED',
    'c1→own gateway': 'CLOSED',
    'a1→metadata': 'CLOSED',
    'c1→metadata': 'CLOSED',
    'a1→outside': 'OPEN',
    'd1→outside': 'OPEN',
  });
});

it('hosts still reach pods: their own (gateway, health checks) and, routed, the other host’s', async () => {
  expect({
    'hA→a1': await connect('hA', PODS.a1.ip),
    'hA→b1': await connect('hA', PODS.b1.ip),
    'hB→a1': await connect('hB', PODS.a1.ip),
    'hA→d1': await connect('hA', PODS.d1.ip),
  }).toEqual({ 'hA→a1': 'OPEN', 'hA→b1': 'OPEN', 'hB→a1': 'OPEN', 'hA→d1': 'OPEN' });
});

it('a new replica is isolated from its first packet, joins its project when attached, and leaves when detached', async () => {
  await addPod('a3', 'hA', '10.77.1.14');
  listen('a3', ['-u', 'TCP-LISTEN:7000,reuseaddr,fork', 'OPEN:/dev/null']);
  // Unknown to every project: no pod reaches it, it reaches no pod (the host still does).
  for (let i = 0; i < 50 && (await connect('hA', '10.77.1.14')) !== 'OPEN'; i++) await new Promise((r) => setTimeout(r, 100));
  expect(await Promise.all([connect('a3', PODS.a1.ip), connect('a1', '10.77.1.14'), connect('b1', '10.77.1.14')])).toEqual(['CLOSED', 'CLOSED', 'CLOSED']);
  await isolation.hA.attached({ replicaId: 'a3', projectId: X, address: '10.77.1.14' });
  expect(await Promise.all([connect('a3', PODS.a1.ip), connect('a1', '10.77.1.14'), connect('c1', '10.77.1.14'), connect('b1', '10.77.1.14'), connect('a3', PODS.b1.ip)])).toEqual([
    'OPEN',
    'OPEN',
    // Host B learns of it only through a sync; until then its pods are refused (default deny).
    'CLOSED',
    'CLOSED',
    'CLOSED',
  ]);
  await isolation.hB.apply(syncState(2, { projects: { ...syncState(2).projects, [X]: [...syncState(2).projects[X]!, '10.77.1.14'] } }));
  expect(await connect('c1', '10.77.1.14')).toBe('OPEN');
  await isolation.hA.detaching('a3');
  expect(await Promise.all([connect('a3', PODS.a1.ip), connect('a1', '10.77.1.14')])).toEqual(['CLOSED', 'CLOSED']);
});

it('the node trusts its own registrations over the sync for its own subnet; claims by two projects deny', async () => {
  // A (stale or forged) sync putting a1 into project Y and b1 into both: host A keeps what it knows.
  await isolation.hA.apply(syncState(3, { projects: { [X]: [PODS.a2.ip, PODS.c1.ip], [Y]: [PODS.a1.ip, PODS.b1.ip, PODS.b2.ip, PODS.d1.ip, PODS.c1.ip] } }));
  expect({
    'a1→a2': await connect('a1', PODS.a2.ip),
    'b1→a1': await connect('b1', PODS.a1.ip),
    // c1 (remote) is claimed by X and Y: nobody on A reaches it.
    'a1→c1': await connect('a1', PODS.c1.ip),
    'b1→c1': await connect('b1', PODS.c1.ip),
  }).toEqual({ 'a1→a2': 'OPEN', 'b1→a1': 'CLOSED', 'a1→c1': 'CLOSED', 'b1→c1': 'CLOSED' });
  // An older state than the last one applied changes nothing.
  await isolation.hA.apply(syncState(2));
  expect(await connect('a1', PODS.c1.ip)).toBe('CLOSED');
  await isolation.hA.apply(syncState(4));
  expect(await connect('a1', PODS.c1.ip)).toBe('OPEN');
});

it('rewriting the rules keeps an established same-project connection and never lets a denied datagram through', async () => {
  const tcpOut = join(dir, 'tcp.out');
  const udpOk = join(dir, 'udp-ok.out');
  const udpDenied = join(dir, 'udp-denied.out');
  listen('a2', ['-u', 'TCP-LISTEN:7001,reuseaddr', `OPEN:${tcpOut},creat,trunc`]);
  listen('a2', ['-u', 'UDP-RECV:7002', `OPEN:${udpOk},creat,append`]);
  listen('a2', ['-u', 'UDP-RECV:7003', `OPEN:${udpDenied},creat,append`]);
  await new Promise((r) => setTimeout(r, 500));
  const lines = 80;
  const counter = `i=1; while [ $i -le ${lines} ]; do echo $i; i=$((i+1)); sleep 0.04; done`;
  // One TCP connection a1 → a2 (same project) and datagrams a1 → a2 (allowed), b1 → a2 (denied), all
  // the while the table is rewritten over and over with changing sets.
  const tcp = inNs('a1', 'socat', ['-u', `SYSTEM:${counter}`, `TCP:${PODS.a2.ip}:7001`]);
  const udp = inNs('a1', 'socat', ['-u', `SYSTEM:${counter}`, `UDP-SENDTO:${PODS.a2.ip}:7002`]);
  // The denied sender goes as fast as it can (one datagram per line) until the rewrites end.
  const denied = spawn('ip', ['netns', 'exec', ns('b1'), 'socat', '-u', 'SYSTEM:i=0; while true; do echo $i; i=$((i+1)); done', `UDP-SENDTO:${PODS.a2.ip}:7003`], {
    stdio: 'ignore',
    detached: true,
  });
  procs.push(denied);
  let rewrites = 0;
  let done = false;
  const both = Promise.all([tcp, udp]).finally(() => (done = true));
  for (let n = 10; !done && n < 1000; n++) {
    const extra = `10.77.2.${100 + (n % 50)}`;
    await isolation.hA.apply(syncState(n, { projects: { ...syncState(n).projects, [n % 2 ? X : Y]: [extra] } }));
    await isolation.hA.attached({ replicaId: `churn-${n}`, projectId: n % 2 ? X : Y, address: `10.77.1.${100 + (n % 50)}` });
    await isolation.hA.detaching(`churn-${n}`);
    rewrites += 3;
  }
  await both;
  // It was sending all along (a sender that died at once would prove nothing).
  expect(denied.exitCode).toBeNull();
  process.kill(-denied.pid!, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  const count = (f: string) => readFileSync(f, 'utf8').split('\n').filter(Boolean);
  expect(rewrites).toBeGreaterThan(5);
  expect(count(tcpOut)).toEqual(Array.from({ length: lines }, (_, i) => String(i + 1)));
  expect(count(udpOk)).toHaveLength(lines);
  expect(count(udpDenied)).toEqual([]);
});

it('a restarted agent takes the table over: the old rules hold until its first commit, then the old projects’ leftovers go', async () => {
  // The previous agent's table (projects X and Y, plus a third one) stays in force meanwhile.
  await isolation.hA.apply(syncState(5000, { projects: { ...syncState(5000).projects, 'project-z': ['10.77.2.200'] } }));
  const before = (await inNs('hA', 'nft', ['list', 'table', 'inet', isolation.hA.table])).stdout;
  expect(before.match(/^\s*chain p\d+ \{/gm)).toHaveLength(3);
  const next = new TenantIsolation({ localPodCidr: HOSTS.hA.subnet, bridge: 'br0', netns: ns('hA') });
  expect(await connect('b1', PODS.a1.ip)).toBe('CLOSED');
  expect(await connect('a1', PODS.a2.ip)).toBe('OPEN');
  // It knows only its own replica a1 so far (recovered): everyone else is unknown, so denied.
  await next.attached({ replicaId: 'a1', projectId: X, address: PODS.a1.ip });
  await next.install();
  const after = (await inNs('hA', 'nft', ['list', 'table', 'inet', next.table])).stdout;
  expect(after.match(/^\s*(?:chain|set) p\d+ \{/gm)?.map((l) => l.trim())).toEqual(['set p1 {', 'chain p1 {']);
  expect(await Promise.all([connect('a1', PODS.a2.ip), connect('b1', PODS.a1.ip)])).toEqual(['CLOSED', 'CLOSED']);
  await next.attached({ replicaId: 'a2', projectId: X, address: PODS.a2.ip });
  expect(await connect('a1', PODS.a2.ip)).toBe('OPEN');
});

it('uninstall removes the table and nothing else', async () => {
  await inNs('hA', 'nft', ['add', 'table', 'inet', 'someone_else']);
  await isolation.hA.uninstall();
  const tables = (await inNs('hA', 'nft', ['list', 'tables'])).stdout;
  expect(tables).not.toContain(isolation.hA.table);
  expect(tables).toContain('someone_else');
  expect(await connect('a1', PODS.b1.ip)).toBe('OPEN');
});
