import { node } from '../test-fixtures';
import type { PlacementRequest } from './plugin';
import { Placer, summariseRejections } from './placer';
import { labelsFilter } from './labels.filter';
import { readyNodeFilter } from './ready-node.filter';
import { resourcesFilter } from './resources.filter';
import { schedulableFilter } from './schedulable.filter';

const req = (over: Partial<PlacementRequest> = {}): PlacementRequest => ({
  serviceId: 'svc',
  resources: { cpuMillis: 100, memoryMiB: 128, pids: 10 },
  constraints: {},
  strategy: 'SPREAD',
  imageDigest: 'sha256:img',
  ...over,
});
const state = { serviceReplicasOnNode: () => 0, serviceReplicasTotal: () => 0 };

describe('filters', () => {
  it('ready-node rejects draining and down nodes with distinct codes', () => {
    expect(readyNodeFilter.check(node('a'), req(), state)).toEqual({ ok: true });
    expect(readyNodeFilter.check(node('a', { status: 'DRAINING' }), req(), state)).toMatchObject({ ok: false, code: 'draining' });
    expect(readyNodeFilter.check(node('a', { status: 'DOWN' }), req(), state)).toMatchObject({ ok: false, code: 'down' });
  });
  it('resources names the missing resource and the amount', () => {
    const full = node('a', { allocated: { cpuMillis: 0, memoryMiB: 4000, pids: 0 } });
    expect(resourcesFilter.check(full, req(), state)).toEqual({
      ok: false,
      code: 'memory',
      reason: 'insufficient memory (need 128 MiB)',
    });
    const noCpu = node('a', { allocated: { cpuMillis: 3950, memoryMiB: 0, pids: 0 } });
    expect(resourcesFilter.check(noCpu, req(), state)).toMatchObject({ code: 'cpu' });
    const noPids = node('a', { allocated: { cpuMillis: 0, memoryMiB: 0, pids: 995 } });
    expect(resourcesFilter.check(noPids, req(), state)).toMatchObject({ code: 'pids' });
    const exact = node('a', { capacity: { cpuMillis: 100, memoryMiB: 128, pids: 10 } });
    expect(resourcesFilter.check(exact, req(), state)).toEqual({ ok: true });
  });
  it('labels requires every constraint', () => {
    const n = node('a', { labels: { zone: 'a', disk: 'ssd' } });
    expect(labelsFilter.check(n, req({ constraints: { zone: 'a' } }), state)).toEqual({ ok: true });
    expect(labelsFilter.check(n, req({ constraints: { zone: 'b', disk: 'ssd' } }), state)).toMatchObject({
      ok: false,
      reason: 'labels do not match (need disk=ssd,zone=b)',
    });
  });
});

describe('schedulable filter', () => {
  it('rejects nodes registered as not schedulable, with a reason the replica can show', () => {
    expect(schedulableFilter.check(node('a'), req(), state)).toEqual({ ok: true });
    expect(schedulableFilter.check(node('a', { schedulable: true }), req(), state)).toEqual({ ok: true });
    expect(schedulableFilter.check(node('a', { schedulable: false }), req(), state)).toMatchObject({ ok: false, code: 'unschedulable' });
  });
  it('is one of the default filters: an edge node never gets a replica, and an unplaceable one says why', () => {
    const p = new Placer([node('a', { schedulable: false }), node('b')], []);
    expect(p.place(req())).toEqual({ ok: true, nodeId: 'id-b' });
    const only = new Placer([node('a', { schedulable: false })], []).place(req());
    expect(only).toMatchObject({ ok: false });
    expect(!only.ok && only.reason).toBe('0/1 nodes available: 1 node not schedulable (BERTH_NODE_SCHEDULABLE=false)');
  });
});

describe('Placer', () => {
  it('spreads a service 2/2/2 over three equal nodes, deterministic by node name', () => {
    const p = new Placer([node('c'), node('a'), node('b')], []);
    const placed = Array.from({ length: 6 }, () => p.place(req())).map((r) => (r.ok ? r.nodeId : r.reason));
    expect(placed).toEqual(['id-a', 'id-b', 'id-c', 'id-a', 'id-b', 'id-c']);
  });
  it('counts replicas the service already has when spreading', () => {
    const p = new Placer([node('a'), node('b'), node('c')], ['id-a', 'id-a', 'id-b']);
    expect(p.place(req())).toEqual({ ok: true, nodeId: 'id-c' });
    expect(p.place(req())).toEqual({ ok: true, nodeId: 'id-b' });
  });
  it('binpacks onto the fullest node that still fits', () => {
    const busy = node('b', { allocated: { cpuMillis: 2000, memoryMiB: 2048, pids: 0 } });
    const p = new Placer([node('a'), busy, node('c')], []);
    expect(p.place(req({ strategy: 'BINPACK' }))).toEqual({ ok: true, nodeId: 'id-b' });
    expect(p.place(req({ strategy: 'BINPACK' }))).toEqual({ ok: true, nodeId: 'id-b' });
  });
  it('spread prefers the emptiest node among nodes without the service', () => {
    const busy = node('a', { allocated: { cpuMillis: 2000, memoryMiB: 2048, pids: 0 } });
    const p = new Placer([busy, node('b')], []);
    expect(p.place(req())).toEqual({ ok: true, nodeId: 'id-b' });
  });
  it('prefers a node that has the image cached', () => {
    const p = new Placer([node('a'), node('b', { cachedImages: ['sha256:img'] })], []);
    expect(p.place(req())).toEqual({ ok: true, nodeId: 'id-b' });
  });
  it('takes resources as it places and reports why nothing fits', () => {
    const small = { capacity: { cpuMillis: 1000, memoryMiB: 600, pids: 100 } };
    const p = new Placer([node('a', small), node('b', small), node('c', { status: 'DRAINING' })], []);
    const r = req({ resources: { cpuMillis: 100, memoryMiB: 512, pids: 1 } });
    expect(p.place(r).ok).toBe(true);
    expect(p.place(r).ok).toBe(true);
    const res = p.place(r);
    expect(res).toEqual({
      ok: false,
      reason: '0/3 nodes available: 2 insufficient memory (need 512 MiB), 1 draining',
      rejected: { memory: 2, draining: 1 },
    });
  });
  it('does not modify the snapshot it was given', () => {
    const a = node('a');
    new Placer([a], []).place(req());
    expect(a.allocated.cpuMillis).toBe(0);
  });
  it('summarises an empty fleet', () => {
    expect(new Placer([], []).place(req())).toMatchObject({ ok: false, reason: '0/0 nodes available: no nodes registered' });
    expect(summariseRejections(2, { down: { count: 2, reason: 'node down' } })).toBe('0/2 nodes available: 2 node down');
  });
});

describe('Placer with bounded scoring (sampling)', () => {
  const fleet = (n: number, over: (i: number) => Partial<Parameters<typeof node>[1]> = () => ({})) =>
    Array.from({ length: n }, (_, i) => node(`n${String(i).padStart(3, '0')}`, over(i)));
  const countingFilter = () => {
    let checks = 0;
    const f = { name: 'count', check: () => (checks++, { ok: true as const }) };
    return { f, checks: () => checks };
  };

  it('scores only `limit` feasible nodes, starting at the offset and rotating on', () => {
    const c = countingFilter();
    const p = new Placer(fleet(100), [], [c.f, readyNodeFilter, resourcesFilter], undefined, { limit: 4, offset: 10 });
    // Equal nodes: the first one met wins; the next placement starts where the window ended.
    expect(p.place(req())).toEqual({ ok: true, nodeId: 'id-n010' });
    expect(c.checks()).toBe(4);
    // The service now has 1 replica: the window is max(4, 1 + 1) = 4 nodes, from n014.
    expect(p.place(req())).toEqual({ ok: true, nodeId: 'id-n014' });
    expect(c.checks()).toBe(8);
  });

  it('is deterministic for a given offset and wraps around the end of the fleet', () => {
    const run = () => {
      const p = new Placer(fleet(10), [], undefined, undefined, { limit: 3, offset: 28 });
      return Array.from({ length: 4 }, () => p.place(req())).map((r) => (r.ok ? r.nodeId : r.reason));
    };
    expect(run()).toEqual(['id-n008', 'id-n001', 'id-n004', 'id-n007']);
    expect(run()).toEqual(run());
  });

  it('keeps one replica per node while nodes last: the window is wider than the replicas the service has', () => {
    // Limit 2 on 30 nodes, 20 replicas: every replica still lands on a node without one.
    const p = new Placer(fleet(30), [], undefined, undefined, { limit: 2, offset: 7 });
    const placed = Array.from({ length: 20 }, () => p.place(req())).map((r) => (r.ok ? r.nodeId : r.reason));
    expect(new Set(placed).size).toBe(20);
    // Existing replicas count too: with 5 on the first nodes of the window, the 6th goes elsewhere.
    const q = new Placer(fleet(30), ['id-n000', 'id-n001', 'id-n002', 'id-n003', 'id-n004'], undefined, undefined, { limit: 2, offset: 0 });
    expect(q.place(req())).toEqual({ ok: true, nodeId: 'id-n005' });
  });

  it('skips infeasible nodes to find `limit` feasible ones (rare labels are still found)', () => {
    const nodes = fleet(50, (i) => (i === 37 ? { labels: { gpu: 'yes' } } : {}));
    const p = new Placer(nodes, [], undefined, undefined, { limit: 3, offset: 0 });
    expect(p.place(req({ constraints: { gpu: 'yes' } }))).toEqual({ ok: true, nodeId: 'id-n037' });
  });

  it('looks at the whole fleet before declaring a replica PENDING, so the reason counts every node', () => {
    const nodes = fleet(20, (i) => (i < 5 ? { status: 'DRAINING' } : { capacity: { cpuMillis: 1000, memoryMiB: 100, pids: 100 } }));
    const p = new Placer(nodes, [], undefined, undefined, { limit: 2, offset: 3 });
    expect(p.place(req())).toEqual({
      ok: false,
      reason: '0/20 nodes available: 15 insufficient memory (need 128 MiB), 5 draining',
      rejected: { memory: 15, draining: 5 },
    });
  });

  it('binpacks within the window: the fullest scored node wins', () => {
    const nodes = fleet(10, (i) => (i === 2 ? { allocated: { cpuMillis: 2000, memoryMiB: 2048, pids: 0 } } : i === 8 ? { allocated: { cpuMillis: 3000, memoryMiB: 3072, pids: 0 } } : {}));
    expect(new Placer(nodes, [], undefined, undefined, { limit: 4, offset: 0 }).place(req({ strategy: 'BINPACK' }))).toEqual({ ok: true, nodeId: 'id-n002' });
    expect(new Placer(nodes, [], undefined, undefined, { limit: 4, offset: 6 }).place(req({ strategy: 'BINPACK' }))).toEqual({ ok: true, nodeId: 'id-n008' });
  });

  it('a limit of 0 or at least the fleet size scores every node (ties to node order)', () => {
    for (const limit of [0, 3, 10]) {
      const p = new Placer(fleet(3), [], undefined, undefined, { limit, offset: 2 });
      expect(p.place(req())).toEqual({ ok: true, nodeId: 'id-n000' });
    }
  });
});
