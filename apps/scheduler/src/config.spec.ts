import { ConfigError, loadConfig } from '@berth/config';
import { autoscalerSettings } from './autoscaler';
import { schedulerConfigSchema } from './config';

const base = { DATABASE_URL: 'postgresql://x@127.0.0.1/db', REDIS_URL: 'redis://127.0.0.1:6379' };

describe('scheduler configuration', () => {
  it('carries the autoscaler settings, which the autoscaler reads from it', () => {
    const c = loadConfig(schedulerConfigSchema, { ...base, BERTH_AUTOSCALER_TICK_MS: '250', BERTH_AUTOSCALER_STABLE_WINDOW_MS: '10000', BERTH_REDIS_KEY_PREFIX: 'p:' });
    const s = autoscalerSettings(c);
    expect(s).toMatchObject({ enabled: true, tickMs: 250, keyPrefix: 'p:', sampleMaxAgeMs: 3000 });
    expect(s.decider).toMatchObject({ stableWindowMs: 10_000, panicWindowMs: 6000, scaleToZeroGraceMs: 30_000 });
  });

  it('refuses a panic window longer than the stable window, naming the variable', () => {
    expect(() => loadConfig(schedulerConfigSchema, { ...base, BERTH_AUTOSCALER_PANIC_WINDOW_MS: '90000' })).toThrow(ConfigError);
    expect(() => loadConfig(schedulerConfigSchema, { ...base, BERTH_AUTOSCALER_PANIC_WINDOW_MS: '90000' })).toThrow(
      /BERTH_AUTOSCALER_PANIC_WINDOW_MS: must not exceed BERTH_AUTOSCALER_STABLE_WINDOW_MS/,
    );
  });

  it('refuses a bad autoscaler variable at start', () => {
    expect(() => loadConfig(schedulerConfigSchema, { ...base, BERTH_AUTOSCALER_TICK_MS: '10' })).toThrow(/BERTH_AUTOSCALER_TICK_MS/);
  });
});
