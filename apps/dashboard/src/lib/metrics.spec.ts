import { formatMetric, latest, linePath, niceCeil, seriesMax, total, type MetricPoint } from './metrics';

const pt = (over: Partial<MetricPoint>): MetricPoint => ({
  t: '2026-12-07T18:00:00.000Z',
  requests: 0,
  requestsPerSecond: 0,
  errors5xx: 0,
  latencyP50Ms: null,
  latencyP95Ms: null,
  replicasReady: null,
  coldStarts: 0,
  coldStartP50Ms: null,
  ...over,
});

describe('metrics charts', () => {
  it('rounds the y-axis top up to 1, 2, 2.5 or 5 × 10^n, never below the floor', () => {
    expect(niceCeil(0)).toBe(1);
    expect(niceCeil(0.3)).toBe(1);
    expect(niceCeil(0.3, 0.1)).toBe(0.5);
    expect(niceCeil(3)).toBe(5);
    expect(niceCeil(21)).toBe(25);
    expect(niceCeil(100)).toBe(100);
    expect(niceCeil(101)).toBe(200);
  });

  it('draws a line across minutes with data and breaks it at nulls', () => {
    const points = [pt({ latencyP50Ms: 10 }), pt({ latencyP50Ms: 20 }), pt({}), pt({ latencyP50Ms: 0 }), pt({ latencyP50Ms: 20 })];
    // width 40: x = 0, 10, 20, 30, 40; height 100, yMax 20.
    expect(linePath(points, 'latencyP50Ms', 40, 100, 20)).toBe('M0 50L10 0M30 100L40 0');
  });

  it('draws a lone point as a short dash, and clamps values above yMax to the top', () => {
    const points = [pt({}), pt({ replicasReady: 4 }), pt({})];
    expect(linePath(points, 'replicasReady', 20, 10, 2)).toBe('M9 0H11');
    expect(linePath([], 'requests', 20, 10, 2)).toBe('');
  });

  it('summaries: max, latest value, totals, formatting', () => {
    const points = [pt({ requests: 60, requestsPerSecond: 1, latencyP95Ms: 12 }), pt({ requests: 30, requestsPerSecond: 0.5, coldStarts: 2 }), pt({})];
    expect(seriesMax(points, ['requestsPerSecond', 'latencyP95Ms'])).toBe(12);
    expect(latest(points, 'latencyP95Ms')).toBe(12);
    expect(latest(points, 'coldStartP50Ms')).toBeNull();
    expect(total(points, 'requests')).toBe(90);
    expect(total(points, 'coldStarts')).toBe(2);
    expect(formatMetric(null)).toBe('—');
    expect(formatMetric(0)).toBe('0');
    expect(formatMetric(0.0512, 'req/s')).toBe('0.051 req/s');
    expect(formatMetric(12.34, 'ms')).toBe('12.3 ms');
    expect(formatMetric(1234)).toBe('1.2k');
  });
});
