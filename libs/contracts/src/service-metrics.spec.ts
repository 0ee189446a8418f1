import { bucketIndex, bucketQuantile, LATENCY_BUCKETS_MS, MetricsField, metricsPoint, minuteOf } from './service-metrics';

describe('service metrics', () => {
  it('puts values in the first bucket whose bound holds them, and the overflow bucket after the last', () => {
    expect(bucketIndex([1, 5, 10], 0.2)).toBe(0);
    expect(bucketIndex([1, 5, 10], 5)).toBe(1);
    expect(bucketIndex([1, 5, 10], 11)).toBe(3);
  });

  it('interpolates quantiles inside a bucket, as histogram_quantile does', () => {
    expect(bucketQuantile([10, 20], [0, 0, 0], 0.5)).toBeNull();
    expect(bucketQuantile([10, 20], [10, 0, 0], 0.5)).toBe(5);
    expect(bucketQuantile([10, 20], [0, 10, 0], 0.5)).toBe(15);
    expect(bucketQuantile([10, 20], [5, 5, 0], 0.95)).toBe(19);
    expect(bucketQuantile([10, 20], [0, 0, 4], 0.5)).toBe(20); // slower than every bound: the last bound
  });

  it('turns a minute hash into a point; a missing hash is a quiet minute with unknown replicas', () => {
    const minute = minuteOf(Date.UTC(2026, 11, 7, 12, 30, 45));
    const hash: Record<string, string> = { [MetricsField.requests]: '120', [MetricsField.errors5xx]: '3', [MetricsField.replicasReady]: '2', [MetricsField.coldStarts]: '1', c2: '1' };
    hash[MetricsField.latencyBucket(LATENCY_BUCKETS_MS.indexOf(10))] = '120';
    const p = metricsPoint(minute, hash);
    expect(p).toMatchObject({ t: '2026-12-07T12:30:00.000Z', requests: 120, requestsPerSecond: 2, errors5xx: 3, replicasReady: 2, coldStarts: 1, coldStartP50Ms: 150 });
    expect(p.latencyP50Ms).toBe(7.5);
    expect(metricsPoint(minute, {})).toMatchObject({ requests: 0, latencyP50Ms: null, replicasReady: null, coldStartP50Ms: null });
  });
});
