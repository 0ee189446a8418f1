import { RedisKey, type RouteEntry } from '@berth/contracts';
import { Harness, waitFor } from './helpers/harness';

jest.setTimeout(60_000);

describe('scheduler with hollow agents', () => {
  const h = new Harness();
  beforeAll(async () => {
    await h.setup();
    await h.startScheduler();
    for (const n of ['node-a', 'node-b', 'node-c']) await h.addNode(n);
  });
  afterAll(() => h.teardown());

  let web: { id: string; name: string };

  it('places 6 replicas on 3 nodes 2/2/2, all READY, and publishes their endpoints', async () => {
    web = await h.createService('web', 6);
    await waitFor('6 READY', async () => (await h.live(web.id)).length === 6);
    expect(await h.perNode(web.id)).toEqual({ 'node-a': 2, 'node-b': 2, 'node-c': 2 });
    const route = await waitFor('route with 6 endpoints', async () => {
      const raw = await h.redis.hget(RedisKey.routes, `p${h.id}/web`);
      const e = raw ? (JSON.parse(raw) as RouteEntry) : null;
      return e && e.endpoints.length === 6 ? e : null;
    });
    expect(route).toMatchObject({ serviceId: web.id, project: `p${h.id}`, service: 'web', desiredReplicas: 6, startingReplicas: 0 });
    const ready = await h.live(web.id);
    expect(route.endpoints.map((e) => e.replicaId).sort()).toEqual(ready.map((r) => r.id).sort());
    expect(route.endpoints.every((e) => e.port === 8080 && /^10\.\d+\.\d+\.\d+$/.test(e.address))).toBe(true);
    await waitFor('revision ACTIVE', async () => (await h.prisma.client.revision.findFirstOrThrow({ where: { serviceId: web.id } })).status === 'ACTIVE');
    const types = (await h.events_(web.id)).map((e) => e.type);
    expect(types).toEqual(expect.arrayContaining(['revision.rollout_started', 'replicas.placed', 'revision.active']));
  });

  it('ships container log lines to the replica log stream', async () => {
    const svc = await h.createService('chatty', 1, { BERTH_HOLLOW: JSON.stringify({ logLines: ['hello from hollow'] }) });
    const [r] = await waitFor('1 READY', async () => {
      const l = await h.live(svc.id);
      return l.length === 1 ? l : null;
    });
    const entries = await waitFor('log entry', async () => {
      const x = await h.redis.xrange(RedisKey.logs(r!.id), '-', '+');
      return x.length > 0 ? x : null;
    });
    const fields = entries[0]![1];
    expect(fields).toEqual(['ts', expect.any(String), 'stream', 'stdout', 'line', 'hello from hollow']);
    await h.services.update(svc.id, { desiredReplicas: 0 } as never);
    await h.scheduler!.queues.enqueueReconcile(svc.id, 'scale');
    await waitFor('scaled to 0', async () => (await h.live(svc.id, ['SCHEDULED', 'PULLING', 'STARTING', 'RUNNING', 'READY', 'STOPPING'])).length === 0);
    expect((await h.replicas(svc.id)).map((x) => x.state)).toEqual(['STOPPED']);
  });

  it('keeps a replica PENDING with the reason when nothing fits, and places it when capacity appears', async () => {
    const big = await h.createService('big', 1, {}, { memoryMiB: 8000 });
    const [p] = await waitFor('pending with reason', async () => {
      const r = await h.replicas(big.id);
      return r.length === 1 && r[0]!.pendingReason ? r : null;
    });
    expect(p!.state).toBe('PENDING');
    expect(p!.pendingReason).toBe('0/3 nodes available: 3 insufficient memory (need 8000 MiB)');
    expect((await h.events_(big.id)).some((e) => e.type === 'replicas.unschedulable' && e.message.includes('insufficient memory'))).toBe(true);
    await h.addNode('node-big', { memoryMiB: 16_000 });
    await waitFor('big READY on node-big', async () => (await h.perNode(big.id))['node-big'] === 1);
    await h.services.update(big.id, { desiredReplicas: 0 } as never);
    await h.scheduler!.queues.enqueueReconcile(big.id, 'scale');
    await waitFor('big gone', async () => (await h.live(big.id, ['READY', 'STOPPING'])).length === 0);
    // Leave three equal nodes for the next tests.
    const nb = h.nodes.find((n) => n.name === 'node-big')!;
    await nb.crash();
    await h.prisma.client.node.update({ where: { id: nb.id }, data: { status: 'DRAINING' } });
  });

  it('rolls out a new revision without dropping below the desired READY count', async () => {
    const before = await h.live(web.id);
    const ready: number[] = [];
    const rev2 = await h.deploy(web.id, { VERSION: '2' });
    await waitFor(
      'all replicas on revision 2',
      async () => {
        const live = await h.live(web.id);
        ready.push(live.length);
        return live.length === 6 && live.every((r) => r.revisionId === rev2.id) && (await h.live(web.id, ['STOPPING'])).length === 0;
      },
      20_000,
      20,
    );
    expect(Math.min(...ready)).toBeGreaterThanOrEqual(6);
    const all = await h.replicas(web.id);
    expect(all.filter((r) => before.some((b) => b.id === r.id)).every((r) => r.state === 'STOPPED')).toBe(true);
    // Surge 25% of 6 = 2: never more than 8 replicas held resources at once.
    const revs = await h.prisma.client.revision.findMany({ where: { serviceId: web.id }, orderBy: { number: 'asc' } });
    expect(revs.map((r) => r.status)).toEqual(['SUPERSEDED', 'ACTIVE']);
    expect((await h.events_(web.id)).some((e) => e.type === 'rollout.step')).toBe(true);
  });

  it('fails a crash-looping revision (fail fast, before its deadline) and restores the previous one without touching its replicas', async () => {
    const good = await h.live(web.id);
    const goodIds = good.map((r) => r.id).sort();
    const bad = await h.deploy(web.id, { BERTH_HOLLOW: JSON.stringify({ exit: { afterMs: 30, code: 1 } }) }, 'crash');
    const samples: string[][] = [];
    const rolled = await waitFor(
      'revision FAILED and service back on the previous revision',
      async () => {
        samples.push((await h.live(web.id)).map((r) => r.id).sort());
        const svc = await h.prisma.client.service.findUniqueOrThrow({ where: { id: web.id } });
        const rev = await h.prisma.client.revision.findUniqueOrThrow({ where: { id: bad.id } });
        return rev.status === 'FAILED' && svc.activeRevisionId === good[0]!.revisionId ? rev : null;
      },
      20_000,
      50,
    );
    // Three exits per new replica come long before the 3 s deadline (backoff 200 ms): fail fast.
    expect(rolled.statusReason).toMatch(/^(\d)\/\1 started replica\(s\) crash-looping: exited with code 1 after \d+ restart\(s\) \([3-9] exits\)$/);
    // The old replicas stayed READY the whole time.
    for (const s of samples) expect(s).toEqual(expect.arrayContaining(goodIds));
    await waitFor('crashing replicas stopped', async () => (await h.live(web.id, ['STARTING', 'RUNNING', 'EXITED', 'BACKOFF', 'STOPPING'])).length === 0);
    expect((await h.live(web.id)).map((r) => r.id).sort()).toEqual(goodIds);
    const ev = await h.events_(web.id);
    expect(ev.find((e) => e.type === 'revision.failed')?.level).toBe('ERROR');
    expect(ev.find((e) => e.type === 'service.rolled_back')?.message).toMatch(/rolled back to revision 2 after revision 3 failed/);
  });

  it('drains a node: replacements READY first, READY count never below desired, node emptied', async () => {
    const c = h.nodes.find((n) => n.name === 'node-c')!;
    await h.prisma.client.node.update({ where: { id: c.id }, data: { status: 'DRAINING' } });
    await h.scheduler!.queues.enqueueReconcile(web.id, 'node-drain');
    const ready: number[] = [];
    await waitFor(
      'node-c empty',
      async () => {
        ready.push((await h.live(web.id)).length);
        const pn = await h.perNode(web.id);
        return !pn['node-c'] && (await h.live(web.id)).length === 6;
      },
      20_000,
      20,
    );
    expect(Math.min(...ready)).toBeGreaterThanOrEqual(6);
    expect(await h.perNode(web.id)).toEqual({ 'node-a': 3, 'node-b': 3 });
    await h.prisma.client.node.update({ where: { id: c.id }, data: { status: 'READY' } });
  });

  it('a node that stops heartbeating goes DOWN, its replicas LOST, replacements READY elsewhere; when it returns its stale containers are stopped', async () => {
    const api = await h.createService('api', 6);
    await waitFor('6 READY', async () => (await h.live(api.id)).length === 6);
    expect(await h.perNode(api.id)).toEqual({ 'node-a': 2, 'node-b': 2, 'node-c': 2 });
    const c = h.nodes.find((n) => n.name === 'node-c')!;
    const onC = (await h.live(api.id)).filter((r) => r.nodeId === c.id).map((r) => r.id);

    const t0 = Date.now();
    await c.crash(); // the agent dies; its (hollow) containers keep running
    await waitFor('node-c DOWN', async () => (await h.prisma.client.node.findUniqueOrThrow({ where: { id: c.id } })).status === 'DOWN', 10_000);
    const downAfter = Date.now() - t0;
    // Silent for 4 × 250 ms after its last beat (which came at most one interval before the close).
    expect(downAfter).toBeGreaterThanOrEqual(4 * 250 - 250 - 50);
    const lost = await h.prisma.client.replica.findMany({ where: { id: { in: onC } } });
    expect(lost.every((r) => r.state === 'LOST')).toBe(true);
    await waitFor('6 READY elsewhere', async () => {
      const l = await h.live(api.id);
      return l.length === 6 && l.every((r) => r.nodeId !== c.id);
    });
    const ev = await h.prisma.client.event.findMany({ where: { OR: [{ nodeId: c.id }, { replicaId: { in: onC } }] } });
    expect(ev.map((e) => e.type)).toEqual(expect.arrayContaining(['node.down', 'replica.lost']));
    expect((await c.runtime.list()).filter((x) => x.status === 'running').length).toBe(onC.length);

    // The agent comes back (same containers): node READY again, it is told to run nothing, stale ones stop.
    const back = await h.addNode('node-c', { runtime: c.runtime });
    await waitFor('node-c READY', async () => (await h.prisma.client.node.findUniqueOrThrow({ where: { id: c.id } })).status === 'READY', 10_000);
    await waitFor('stale containers gone', async () => (await back.runtime.list()).length === 0, 10_000);
    expect((await h.live(api.id)).length).toBe(6);
  });
  it('a sync-node list read before a start was queued does not stop that replica; a newer list does', async () => {
    const svc = await h.createService('fenced', 1);
    const [r] = await waitFor('1 READY', async () => {
      const l = await h.live(svc.id);
      return l.length === 1 ? l : null;
    });
    const node = h.nodes.find((n) => n.id === r!.nodeId)!;
    const running = async () => (await node.runtime.list()).filter((c) => c.id === r!.id && c.status === 'running').length;
    // A list that does not name it, but was read before its start command was queued (a placement
    // committed while the list was being read): kept.
    await node.agent.sync([], 1);
    expect(await running()).toBe(1);
    expect((await h.replicas(svc.id)).map((x) => x.state)).toEqual(['READY']);
    // A list read now that does not name it: stopped.
    await node.agent.sync([], Date.now());
    await waitFor('stopped by the newer sync', async () => (await running()) === 0, 10_000);
  });
});
