import { addSample, chartWindow, HOUR_MS, niceMax, stepPoints } from './chart';

describe('chart geometry', () => {
  it('keeps an hour of samples, one per gap', () => {
    let s = addSample([], { t: 0, ready: 1, desired: 1 });
    s = addSample(s, { t: 1000, ready: 2, desired: 2 });
    expect(s).toEqual([{ t: 1000, ready: 2, desired: 2 }]);
    s = addSample(s, { t: 5000, ready: 3, desired: 3 });
    expect(s).toHaveLength(2);
    s = addSample(s, { t: 5000 + HOUR_MS, ready: 1, desired: 1 });
    expect(s).toEqual([{ t: 5000 + HOUR_MS, ready: 1, desired: 1 }]);
  });

  it('draws steps scaled into the box, y growing downward', () => {
    const samples = [
      { t: 0, ready: 0, desired: 2 },
      { t: 50, ready: 2, desired: 2 },
    ];
    expect(stepPoints(samples, 'ready', 100, 100, 10, 2, 100)).toBe('0,10 50,10 50,0 100,0');
    expect(stepPoints([], 'ready', 100, 100, 10, 2, 100)).toBe('');
  });

  it('clamps samples older than the window to the left edge', () => {
    expect(stepPoints([{ t: -500, ready: 1, desired: 1 }], 'desired', 100, 100, 10, 1, 100)).toBe('0,0 100,0');
  });

  it('picks a y maximum of at least 1 and a window between 5 minutes and an hour', () => {
    expect(niceMax([])).toBe(1);
    expect(niceMax([{ t: 0, ready: 2, desired: 5 }])).toBe(5);
    expect(chartWindow([], 0)).toBe(5 * 60_000);
    expect(chartWindow([{ t: 0, ready: 0, desired: 0 }], 20 * 60_000)).toBe(20 * 60_000);
    expect(chartWindow([{ t: 0, ready: 0, desired: 0 }], 3 * HOUR_MS)).toBe(HOUR_MS);
  });
});
