import type { NodeWithAllocation, SchedulerRepository } from '../db';
import { NodeSnapshotCache } from './node-snapshot.cache';

const row = (id: string): NodeWithAllocation =>
  ({ id, name: id, status: 'READY', cpuMillis: 1000, memoryMiB: 1024, pids: 100, allocated: { cpuMillis: 0, memoryMiB: 0, pids: 0 } }) as NodeWithAllocation;

function cache() {
  let loads = 0;
  const repo = {
    fleetVersion: async () => 'v1',
    nodeSnapshot: async () => {
      loads++;
      return [row('a'), row('b')];
    },
  } as unknown as SchedulerRepository;
  return { c: new NodeSnapshotCache(repo, 60_000, () => 0), loads: () => loads };
}

const res = { cpuMillis: 100, memoryMiB: 128, pids: 10 };

describe('NodeSnapshotCache', () => {
  it('shows placements of plans still being committed to concurrent planners, until released', async () => {
    const { c } = cache();
    await c.get();
    const release = c.reserve(['a', 'a'], res);
    const during = await c.get();
    expect(during.find((n) => n.id === 'a')!.allocated).toEqual({ cpuMillis: 200, memoryMiB: 256, pids: 20 });
    expect(during.find((n) => n.id === 'b')!.allocated).toEqual({ cpuMillis: 0, memoryMiB: 0, pids: 0 });
    release();
    release(); // idempotent
    expect((await c.get()).find((n) => n.id === 'a')!.allocated).toEqual({ cpuMillis: 0, memoryMiB: 0, pids: 0 });
  });

  it('does not change the cached rows while reserving; a committed placement is allocated once', async () => {
    const { c, loads } = cache();
    const first = await c.get();
    const release = c.reserve(['b'], res);
    await c.get();
    expect(first.find((n) => n.id === 'b')!.allocated.cpuMillis).toBe(0);
    c.allocate('b', res);
    release();
    expect((await c.get()).find((n) => n.id === 'b')!.allocated).toEqual({ cpuMillis: 100, memoryMiB: 128, pids: 10 });
    expect(loads()).toBe(1);
  });
});
