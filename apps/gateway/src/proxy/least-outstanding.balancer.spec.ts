import type { RouteEndpoint } from '@berth/contracts';
import { LeastOutstandingBalancer } from './least-outstanding.balancer';

const ep = (id: string): RouteEndpoint => ({ replicaId: id, revisionId: 'r', address: '10.0.0.1', port: 8080 });
const eps = ['a', 'b', 'c'].map(ep);

describe('LeastOutstandingBalancer', () => {
  let now = 0;
  const make = (random = () => 0.5) => new LeastOutstandingBalancer({ ejectMs: 1000, now: () => now, random });

  it('picks the replica with the fewest requests in flight', () => {
    const b = make();
    b.acquire('a');
    b.acquire('a');
    b.acquire('b');
    expect(b.pick(eps)?.replicaId).toBe('c');
    b.acquire('c');
    b.acquire('c');
    expect(b.pick(eps)?.replicaId).toBe('b');
    b.release('a');
    b.release('a');
    expect(b.pick(eps)?.replicaId).toBe('a');
  });

  it('breaks ties at random, spreading evenly', () => {
    let seed = 1;
    const rnd = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
    const b = make(rnd);
    const counts: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < 3000; i++) counts[b.pick(eps)!.replicaId]++;
    for (const c of Object.values(counts)) expect(c).toBeGreaterThan(800);
  });

  it('skips excluded and ejected replicas, falling back to an ejected one when nothing else is left', () => {
    const b = make();
    expect(b.pick(eps, new Set(['a', 'b']))?.replicaId).toBe('c');
    b.eject('c');
    expect(b.pick(eps, new Set(['a', 'b']))?.replicaId).toBe('c');
    expect(b.pick(eps, new Set(['a']))?.replicaId).toBe('b');
    expect(b.pick(eps, new Set(['a', 'b', 'c']))).toBeNull();
    now += 1001;
    b.acquire('a');
    b.acquire('b');
    expect(b.pick(eps)?.replicaId).toBe('c');
  });
});
