import { ConcurrencyTracker } from './concurrency-tracker';

describe('ConcurrencyTracker', () => {
  it('reports the time-weighted average in flight over the interval', () => {
    const t = new ConcurrencyTracker(0);
    t.begin('s', 0);
    t.begin('s', 0);
    t.end('s', 500); // 2 for 500 ms, then 1 for 500 ms → 1.5
    expect(t.inflight('s')).toBe(1);
    expect(t.sample(1000).get('s')).toBeCloseTo(1.5);
    // Still one in flight for the whole next interval.
    expect(t.sample(2000).get('s')).toBeCloseTo(1);
  });
  it('counts a short request as a fraction and forgets idle services after one zero sample', () => {
    const t = new ConcurrencyTracker(0);
    t.begin('s', 100);
    t.end('s', 400);
    expect(t.sample(1000).get('s')).toBeCloseTo(0.3);
    expect(t.sample(2000).get('s')).toBe(0);
    expect(t.sample(3000).has('s')).toBe(false);
  });
});
