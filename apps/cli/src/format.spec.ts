import { age, bar, bytes, colorEnabled, colors, exitCell, paintState, parsePairs, percent, shortDigest, table, unschedulableAdvice } from './format';

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

describe('colour and progress bars', () => {
  it('colours only a TTY, and NO_COLOR / TERM=dumb win over it; FORCE_COLOR forces', () => {
    expect(colorEnabled(true, {})).toBe(true);
    expect(colorEnabled(false, {})).toBe(false);
    expect(colorEnabled(undefined, {})).toBe(false);
    expect(colorEnabled(true, { NO_COLOR: '' })).toBe(false);
    expect(colorEnabled(true, { NO_COLOR: '1' })).toBe(false);
    expect(colorEnabled(true, { TERM: 'dumb' })).toBe(false);
    expect(colorEnabled(false, { FORCE_COLOR: '1' })).toBe(true);
    expect(colorEnabled(true, { FORCE_COLOR: '0' })).toBe(true);
  });
  it('leaves text alone when colour is off', () => {
    const c = colors(false);
    expect(c.red('x') + c.green('y') + c.bold('z')).toBe('xyz');
    expect(colors(true).red('x')).toBe('\x1b[31mx\x1b[39m');
  });
  it('aligns coloured cells by their visible width', () => {
    const c = colors(true);
    const t = table([{ state: 'READY', n: 1 }, { state: 'PULLING', n: 2 }], { paint: (col, v) => (col === 'state' ? paintState(c, v) : v) });
    const plain = t.split('\x1b[32m').join('').split('\x1b[33m').join('').split('\x1b[39m').join('');
    expect(plain).toBe(['STATE    N', 'READY    1', 'PULLING  2'].join('\n'));
    expect(t).toContain('\x1b[32mREADY\x1b[39m');
  });
  it('draws bars and percentages, clamped', () => {
    expect(bar(0.5, 10)).toBe('[#####-----]');
    expect(bar(2, 4)).toBe('[####]');
    expect(bar(Number.NaN, 4)).toBe('[----]');
    expect(bar(0.25, 4, true)).toBe('█░░░');
    expect(percent(1, 3)).toBe(' 33%');
    expect(percent(5, 0)).toBe('  0%');
    expect(percent(3, 3)).toBe('100%');
  });
});

describe('exitCell', () => {
  it('shows the code, with the signal for 128+N, and the reason only when it adds something', () => {
    expect(exitCell({ code: 0, reason: 'exited with code 0' })).toBe('0');
    expect(exitCell({ code: 1, reason: 'exited with code 1' })).toBe('1');
    expect(exitCell({ code: 137, reason: 'killed by SIGKILL (exit 137)' })).toBe('137 (SIGKILL)');
    expect(exitCell({ code: 137, reason: 'OOM killed (exit 137)' })).toBe('137 (SIGKILL) OOM killed');
    expect(exitCell({ code: 143, reason: 'not assigned to this node any more' })).toBe('143 (SIGTERM) not assigned to this node any more');
    expect(exitCell({ code: null, reason: 'image pull failed: not found' })).toBe('image pull failed: not found');
    expect(exitCell({ code: 2, reason: null })).toBe('2');
    expect(exitCell(null)).toBeNull();
  });
});

describe('unschedulableAdvice', () => {
  it('adds what to do to the scheduler\'s reason', () => {
    expect(unschedulableAdvice('0/2 nodes available: 2 insufficient cpu (need 4000m)')).toBe(
      '0/2 nodes available: 2 insufficient cpu (need 4000m): lower --cpu/--memory, add a node, or scale down another service (berth nodes shows what each node has free)',
    );
    expect(unschedulableAdvice('0/0 nodes available: no nodes registered')).toMatch(/: add a node/);
    expect(unschedulableAdvice('0/1 nodes available: 1 draining')).toMatch(/: undrain a node/);
    expect(unschedulableAdvice('something new')).toBe('something new');
    expect(unschedulableAdvice(null)).toBeNull();
  });
});
