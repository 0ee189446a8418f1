import { node } from '../test-fixtures';
import type { PlacementRequest } from './plugin';
import { Placer, summariseRejections } from './placer';
import { labelsFilter } from './labels.filter';
import { readyNodeFilter } from './ready-node.filter';
import { resourcesFilter } from './resources.filter';

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
