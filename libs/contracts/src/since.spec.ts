import { parseSince, SinceError } from './since';

describe('parseSince', () => {
  const now = Date.parse('2026-12-07T18:00:00Z');

  it.each([
    ['90s', 90_000],
    ['10m', 600_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1h30m', 5_400_000],
    ['500ms', 500],
  ])('%s is that long before now', (v, ms) => {
    expect(parseSince(v, now)).toBe(now - ms);
  });

  it('takes RFC 3339 times with Z, an offset or fractions', () => {
    expect(parseSince('2026-12-07T17:00:00Z', now)).toBe(Date.parse('2026-12-07T17:00:00Z'));
    expect(parseSince('2026-12-07T19:30:00+02:00', now)).toBe(Date.parse('2026-12-07T17:30:00Z'));
    expect(parseSince('2026-12-07T17:00:00.250Z', now)).toBe(Date.parse('2026-12-07T17:00:00.250Z'));
  });

  it.each(['', '10', 'yesterday', '10 minutes', '-5m', '2026-12-07', '2026-12-07T17:00:00', '2026-13-40T99:00:00Z'])('refuses %j, naming the forms', (v) => {
    expect(() => parseSince(v, now)).toThrow(SinceError);
    expect(() => parseSince(v, now)).toThrow(/duration like 10m, 1h, 2d nor an RFC 3339 time/);
  });
});
