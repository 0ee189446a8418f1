import { TokenBucketLimiter } from './token-bucket';

describe('TokenBucketLimiter', () => {
  it('allows the burst, then refuses with a retry-after, then refills with time', () => {
    let now = 0;
    const l = new TokenBucketLimiter(2, 3, () => now);
    expect([1, 2, 3].map(() => l.take('a').ok)).toEqual([true, true, true]);
    expect(l.take('a')).toEqual({ ok: false, retryAfterSeconds: 1 });
    expect(l.take('b').ok).toBe(true); // keys are independent
    now += 500; // +1 token at 2/s
    expect(l.take('a').ok).toBe(true);
    expect(l.take('a').ok).toBe(false);
  });
  it('never holds more than the burst', () => {
    let now = 0;
    const l = new TokenBucketLimiter(100, 2, () => now);
    l.take('a');
    now += 60_000;
    expect([1, 2, 3].map(() => l.take('a').ok)).toEqual([true, true, false]);
  });
  it('bounds memory by evicting the oldest key', () => {
    const l = new TokenBucketLimiter(1, 1, () => 0, 2);
    l.take('a');
    l.take('b');
    l.take('c'); // evicts a
    expect(l.take('a').ok).toBe(true);
  });
});
