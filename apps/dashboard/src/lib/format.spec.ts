import { formatAgo, formatBytes, formatCpu, formatDuration, formatMiB, fraction, pinnedReference, repositoryOf, shortDigest, tagOf, withoutDigest } from './format';

describe('format', () => {
  it('formats byte sizes in binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1.00 KiB');
    expect(formatBytes(1536 * 1024)).toBe('1.50 MiB');
    expect(formatBytes(250 * 1024 * 1024)).toBe('250 MiB');
    expect(formatBytes(null)).toBe('—');
    expect(formatBytes(Number.NaN)).toBe('—');
  });

  it('formats durations with the two largest units', () => {
    expect(formatDuration(999)).toBe('0 s');
    expect(formatDuration(45_000)).toBe('45 s');
    expect(formatDuration(3 * 60_000 + 5000)).toBe('3 min');
    expect(formatDuration(2 * 3_600_000 + 5 * 60_000)).toBe('2 h 5 min');
    expect(formatDuration(2 * 3_600_000)).toBe('2 h');
    expect(formatDuration(4 * 86_400_000 + 3 * 3_600_000)).toBe('4 d 3 h');
    expect(formatDuration(-5)).toBe('0 s');
  });

  it('formats times relative to an injected now', () => {
    const now = Date.parse('2026-01-01T12:00:00Z');
    expect(formatAgo('2026-01-01T11:59:58Z', now)).toBe('just now');
    expect(formatAgo('2026-01-01T11:59:00Z', now)).toBe('1 min ago');
    expect(formatAgo(null, now)).toBe('—');
    expect(formatAgo('not a date', now)).toBe('—');
  });

  it('shortens digests but keeps the algorithm', () => {
    const d = 'sha256:' + 'ab'.repeat(32);
    expect(shortDigest(d)).toBe('sha256:abababababab');
    expect(shortDigest(undefined)).toBe('—');
  });

  it('splits references into repository, tag and digest', () => {
    expect(tagOf('127.0.0.1:5000/berth-fixtures/web:v1')).toBe('v1');
    expect(tagOf('127.0.0.1:5000/berth-fixtures/web')).toBeNull();
    expect(tagOf('127.0.0.1:5000/web:v2@sha256:00')).toBe('v2');
    expect(repositoryOf('127.0.0.1:5000/berth-fixtures/web:v1')).toBe('127.0.0.1:5000/berth-fixtures/web');
    expect(repositoryOf('localhost:5000/web')).toBe('localhost:5000/web');
    expect(pinnedReference('r/web:v1', 'sha256:1')).toBe('r/web:v1@sha256:1');
    expect(pinnedReference('r/web:v1@sha256:0', 'sha256:1')).toBe('r/web:v1@sha256:1');
    expect(withoutDigest('r/web:v1@sha256:0')).toBe('r/web:v1');
  });

  it('formats capacities and clamps fractions', () => {
    // The forms the CLI shows and the api accepts (libs/contracts quantities.ts).
    expect(formatCpu(2000)).toBe('2');
    expect(formatCpu(250)).toBe('250m');
    expect(formatMiB(512)).toBe('512Mi');
    expect(formatMiB(2048)).toBe('2Gi');
    expect(formatMiB(1536)).toBe('1536Mi');
    expect(fraction(5, 10)).toBe(0.5);
    expect(fraction(15, 10)).toBe(1);
    expect(fraction(1, 0)).toBe(0);
  });
});
