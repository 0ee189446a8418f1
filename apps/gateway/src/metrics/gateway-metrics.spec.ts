import { createMetricsRegistry } from '@berth/observability';
import { RequestStats, createGatewayMetrics } from './gateway-metrics';

/** The value of the sample `name` whose labels include all of `labels` (label order does not matter). */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`)) continue;
    if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}

describe('RequestStats', () => {
  it('folds per-request records into the prom-client counter and histogram when they are read', async () => {
    const registry = createMetricsRegistry('stats-test');
    const metrics = createGatewayMetrics(registry);
    const stats = new RequestStats(metrics);
    stats.record('p/a', 200, 0.0005);
    stats.record('p/a', 200, 0.003);
    stats.record('p/a', 502, 40);
    stats.record('p/b', 404, 0.02);
    const counts = (await metrics.requests.get()).values.map((v) => [v.labels.service, v.labels.code, v.value]);
    expect(counts).toEqual(
      expect.arrayContaining([
        ['p/a', '200', 2],
        ['p/a', '502', 1],
        ['p/b', '404', 1],
      ]),
    );
    const text = await registry.metrics();
    const bucket = (le: string) => sample(text, 'berth_gateway_request_duration_seconds_bucket', { le, service: 'p/a' });
    expect([bucket('0.001'), bucket('0.005'), bucket('30'), bucket('+Inf')]).toEqual([1, 2, 2, 3]);
    expect(sample(text, 'berth_gateway_request_duration_seconds_count', { service: 'p/a' })).toBe(3);
    expect(sample(text, 'berth_gateway_request_duration_seconds_sum', { service: 'p/a' })).toBeCloseTo(40.0035, 6);
    expect(sample(text, 'berth_gateway_request_duration_seconds_count', { service: 'p/b' })).toBe(1);
    // Later records add to the same series.
    stats.record('p/a', 200, 0.0001);
    expect((await metrics.requests.get()).values.find((v) => v.labels.service === 'p/a' && v.labels.code === '200')?.value).toBe(3);
    expect(sample(await registry.metrics(), 'berth_gateway_request_duration_seconds_count', { service: 'p/a' })).toBe(4);
  });
});
