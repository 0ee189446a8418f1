import { describeScaling, resolveScale } from './scale-request';

const current = { min: 0, max: 10, targetConcurrency: 50, desired: 1 };

describe('resolveScale', () => {
  it('replicas alone sets the floor: min = replicas, max kept, that many now', () => {
    expect(resolveScale(current, { replicas: 3 })).toEqual({ ok: true, value: { min: 3, max: 10, targetConcurrency: 50, desired: 3, floor: true } });
  });

  it('replicas alone above max raises max to it (a floor of 20 means 20)', () => {
    expect(resolveScale(current, { replicas: 20 })).toMatchObject({ ok: true, value: { min: 20, max: 20, desired: 20 } });
  });

  it('replicas with max below it is refused, naming replicas', () => {
    expect(resolveScale(current, { replicas: 5, max: 4 })).toMatchObject({ ok: false, field: 'replicas', message: expect.stringContaining('must not exceed max (4)') });
  });

  it('replicas with min is the count now within the bounds, not a floor', () => {
    expect(resolveScale(current, { min: 1, replicas: 3 })).toEqual({ ok: true, value: { min: 1, max: 10, targetConcurrency: 50, desired: 3, floor: false } });
    expect(resolveScale(current, { min: 2, max: 4, replicas: 9 })).toMatchObject({ ok: false, field: 'replicas', message: 'replicas (9) must be within [min, max] = [2, 4]' });
  });

  it('bounds left out keep their value, moved just enough to keep min ≤ max; the count now is clamped into them', () => {
    expect(resolveScale({ ...current, desired: 7 }, { max: 5 })).toMatchObject({ ok: true, value: { min: 0, max: 5, desired: 5 } });
    expect(resolveScale({ ...current, min: 4, max: 6, desired: 4 }, { max: 2 })).toMatchObject({ ok: true, value: { min: 2, max: 2, desired: 2 } });
    expect(resolveScale(current, { min: 12 })).toMatchObject({ ok: true, value: { min: 12, max: 12, desired: 12 } });
    expect(resolveScale(current, { targetConcurrency: 5 })).toMatchObject({ ok: true, value: { min: 0, max: 10, targetConcurrency: 5, desired: 1 } });
  });

  it('refuses an empty request and min above max', () => {
    expect(resolveScale(current, {})).toMatchObject({ ok: false, message: 'give at least one of min, max, replicas, targetConcurrency' });
    expect(resolveScale(current, { min: 3, max: 1 })).toMatchObject({ ok: false, field: 'min' });
  });
});

describe('describeScaling', () => {
  it('says what the autoscaler will do', () => {
    expect(describeScaling({ min: 3, max: 10, desired: 3 })).toBe('min 3, max 10: the autoscaler keeps between 3 and 10 replicas with load (3 now)');
    expect(describeScaling({ min: 1, max: 5, desired: 3 })).toBe(
      'min 1, max 5: the autoscaler keeps between 1 and 5 replicas with load (3 now; without load it goes back to 1 after its stable window)',
    );
    expect(describeScaling({ min: 0, max: 5, desired: 0 })).toBe('min 0, max 5: the autoscaler keeps between 0 and 5 replicas with load and scales to zero when idle (0 now)');
    expect(describeScaling({ min: 2, max: 2, desired: 2 })).toBe('fixed at 2 replicas: the autoscaler does not change it');
    expect(describeScaling({ min: 1, max: 1, desired: 1 })).toBe('fixed at 1 replica: the autoscaler does not change it');
  });
});
