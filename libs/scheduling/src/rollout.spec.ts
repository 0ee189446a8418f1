import { resolveIntOrPercent, rolloutBounds } from './rollout';

describe('rollout bounds', () => {
  it('rounds surge up and unavailable down', () => {
    expect(resolveIntOrPercent('25%', 6, true)).toBe(2);
    expect(resolveIntOrPercent('25%', 6, false)).toBe(1);
    expect(resolveIntOrPercent('3', 6, true)).toBe(3);
  });
  it('rejects malformed values', () => {
    expect(resolveIntOrPercent('abc', 6, true)).toBeNull();
    expect(resolveIntOrPercent('150%', 6, true)).toBeNull();
    expect(resolveIntOrPercent('-1', 6, true)).toBeNull();
  });
  it('defaults to 25% surge and 0 unavailable so capacity never drops', () => {
    expect(rolloutBounds(4, '25%', '0')).toEqual({ surge: 1, maxUnavailable: 0, minAvailable: 4 });
    expect(rolloutBounds(6, 'bogus', 'bogus')).toEqual({ surge: 2, maxUnavailable: 0, minAvailable: 6 });
  });
  it('forces a surge of 1 when both would be 0', () => {
    expect(rolloutBounds(3, '0', '0')).toEqual({ surge: 1, maxUnavailable: 0, minAvailable: 3 });
    expect(rolloutBounds(0, '25%', '0').surge).toBe(1);
  });
  it('caps unavailable at desired', () => {
    expect(rolloutBounds(2, '0', '5')).toEqual({ surge: 0, maxUnavailable: 2, minAvailable: 0 });
  });
});
