import { age, bytes, parsePairs, shortDigest, table } from './format';

describe('format', () => {
  it('aligns table columns and shows missing values as -', () => {
    expect(table([{ name: 'web', ready: 2 }, { name: 'api-server', ready: null }])).toBe(
      ['NAME        READY', 'web         2', 'api-server  -'].join('\n'),
    );
  });
  it('says (none) for an empty list', () => expect(table([])).toBe('(none)'));
  it('formats ages', () => {
    const now = Date.parse('2026-01-01T01:00:00Z');
    expect(age('2026-01-01T00:59:30Z', now)).toBe('30s');
    expect(age('2026-01-01T00:00:00Z', now)).toBe('1h');
    expect(age(null, now)).toBe('-');
  });
  it('shortens digests and sizes', () => {
    expect(shortDigest(`sha256:${'ab'.repeat(32)}`)).toBe('abababababab');
    expect(bytes(1_500_000)).toBe('1.5 MB');
    expect(bytes('200000000')).toBe('200 MB');
  });
  it('parses KEY=VALUE pairs and names a bad one', () => {
    expect(parsePairs(['A=1', 'B=x=y'], 'env')).toEqual({ A: '1', B: 'x=y' });
    expect(() => parsePairs(['nope'], '--env')).toThrow('--env "nope" must look like KEY=VALUE');
  });
});
