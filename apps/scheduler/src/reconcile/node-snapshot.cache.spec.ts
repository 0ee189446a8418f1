import type { NodeWithAllocation, SchedulerRepository } from '@berth/db';
import { NodeSnapshotCache } from './node-snapshot.cache';

const row = (id: string): NodeWithAllocation =>
  ({ id, name: id, status: 'READY', cpuMillis: 1000, memoryMiB: 1024, pids: 100, allocated: { cpuMillis: 0, memoryMiB: 0, pids: 0 } }) as NodeWithAllocation;

function cache(version = () => 'v1') {
  let loads = 0;
  const repo = {
    fleetVersion: async () => version(),
    nodeSnapshot: async () => {
      loads++;
      return [row('a'), row('b')];
    },
  } as unknown as SchedulerRepository;
  return { c: new NodeSnapshotCache(repo, 60_000, () => 0), loads: () => loads };
}

const res = { cpuMillis: 100, memoryMiB: 128, pids: 10 };
const alloc = (s: { nodes: readonly NodeWithAllocation[] }, id: string) => s.nodes.find((n) => n.id === id)!.allocated;

describe('NodeSnapshotCache', () => {
  it('lists plans still being committed by node, until released', async () => {
    const { c } = cache();
    const release = c.reserve(['a', 'a'], res);
    expect(c.inFlightByNode().get('a')).toEqual({ cpuMillis: 200, memoryMiB: 256, pids: 20 });
    expect(c.inFlightByNode().has('b')).toBe(false);
    release();
    release(); // idempotent
    expect(c.inFlightByNode().size).toBe(0);
  });

  it('accounts a committed placement in a new snapshot and leaves the one handed out unchanged', async () => {
    const { c, loads } = cache();
    const first = await c.snapshot();
    c.allocate([{ nodeIds: ['b'], res }]);
    const second = await c.snapshot();
    expect(second).not.toBe(first);
    expect(second.loadId).toBe(first.loadId);
    expect(alloc(first, 'b')).toEqual({ cpuMillis: 0, memoryMiB: 0, pids: 0 });
    expect(alloc(second, 'b')).toEqual({ cpuMillis: 100, memoryMiB: 128, pids: 10 });
    // Untouched rows are shared; the changed one is a new object.
    expect(second.nodes[0]).toBe(first.nodes[0]);
    expect(second.nodes[1]).not.toBe(first.nodes[1]);
    // Rows cannot be changed in place.
    expect(Object.isFrozen(second.nodes[1])).toBe(true);
    expect(Object.isFrozen(second.nodes[1]!.allocated)).toBe(true);
    expect(loads()).toBe(1);
  });

  it('reloads when the fleet version changes, with a new load id', async () => {
    let v = 'v1';
    const { c, loads } = cache(() => v);
    const first = await c.snapshot();
    expect(await c.snapshot()).toBe(first);
    v = 'v2';
    const next = await c.snapshot();
    expect(next.loadId).not.toBe(first.loadId);
    expect(loads()).toBe(2);
  });
});
