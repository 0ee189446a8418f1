import { formatCpu, formatMemory, parseCpu, parseMemory, QuantityError } from './quantities';

describe('CPU quantities', () => {
  it.each([
    ['500m', 500],
    ['100m', 100],
    ['0.5', 500],
    ['.25', 250],
    ['2', 2000],
    ['1.25', 1250],
    [0.5, 500],
    [2, 2000],
    [' 250m ', 250],
  ])('%p is %d millicores', (input, millis) => {
    expect(parseCpu(input)).toBe(millis);
  });

  it.each(['abc', '', '-1', '0', '0m', '1.5m', '250 m', '2 CPU', '1e3'])('%p is refused with the accepted forms named', (input) => {
    expect(() => parseCpu(input)).toThrow(QuantityError);
    expect(() => parseCpu(input)).toThrow(/CPU/);
  });

  it('a bare large integer (the old millicores form) is refused with the fix in the message', () => {
    expect(() => parseCpu('250')).toThrow('for millicores write "250m"');
    expect(() => parseCpu(250)).toThrow('for millicores write "250m"');
  });

  it('shows whole CPUs as a number and the rest in millicores', () => {
    expect(formatCpu(250)).toBe('250m');
    expect(formatCpu(1500)).toBe('1500m');
    expect(formatCpu(2000)).toBe('2');
    expect(parseCpu(formatCpu(750))).toBe(750);
    expect(parseCpu(formatCpu(3000))).toBe(3000);
  });
});

describe('memory quantities', () => {
  it.each([
    ['256Mi', 256],
    ['1Gi', 1024],
    ['1.5Gi', 1536],
    ['512Ki', 1],
    ['512m', 512],
    ['512M', 512],
    ['1g', 1024],
    ['2048k', 2],
    ['500MB', 477],
    ['1GB', 954],
    ['268435456b', 256],
    ['256', 256],
    [256, 256],
    ['0.1Gi', 103],
  ])('%p is %d MiB', (input, mib) => {
    expect(parseMemory(input)).toBe(mib);
  });

  it.each(['abc', '', '256Xi', '1 Gigabyte', '-5Mi', '0Mi', '1e3Mi', '256mi'])('%p is refused with the accepted forms named', (input) => {
    expect(() => parseMemory(input)).toThrow(QuantityError);
    expect(() => parseMemory(input)).toThrow(/memory/);
  });

  it('shows whole GiB as Gi and the rest as Mi', () => {
    expect(formatMemory(256)).toBe('256Mi');
    expect(formatMemory(1024)).toBe('1Gi');
    expect(formatMemory(1536)).toBe('1536Mi');
    expect(parseMemory(formatMemory(1536))).toBe(1536);
  });
});
