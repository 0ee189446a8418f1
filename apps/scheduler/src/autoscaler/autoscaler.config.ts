import { AutoscalerSettings, validateAutoscalerSettings } from '@berth/scheduling';
import type { SchedulerConfig } from '../config';

export interface AutoscalerLoopSettings {
  enabled: boolean;
  tickMs: number;
  sampleMaxAgeMs: number;
  keyPrefix: string;
  decider: AutoscalerSettings;
}

/** The scheduler's validated BERTH_AUTOSCALER_* settings (apps/scheduler/src/config.ts). */
export type AutoscalerConfig = Pick<
  SchedulerConfig,
  | 'BERTH_AUTOSCALER_ENABLED'
  | 'BERTH_AUTOSCALER_TICK_MS'
  | 'BERTH_AUTOSCALER_STABLE_WINDOW_MS'
  | 'BERTH_AUTOSCALER_PANIC_WINDOW_MS'
  | 'BERTH_AUTOSCALER_PANIC_THRESHOLD'
  | 'BERTH_AUTOSCALER_MAX_SCALE_DOWN_RATE'
  | 'BERTH_AUTOSCALER_MAX_SCALE_UP_RATE'
  | 'BERTH_AUTOSCALER_SCALE_TO_ZERO_GRACE_MS'
  | 'BERTH_AUTOSCALER_SAMPLE_MAX_AGE_MS'
  | 'BERTH_REDIS_KEY_PREFIX'
>;

/** The autoscaler loop's settings from the scheduler's configuration. */
export function autoscalerSettings(c: AutoscalerConfig): AutoscalerLoopSettings {
  return {
    enabled: c.BERTH_AUTOSCALER_ENABLED,
    tickMs: c.BERTH_AUTOSCALER_TICK_MS,
    sampleMaxAgeMs: c.BERTH_AUTOSCALER_SAMPLE_MAX_AGE_MS,
    keyPrefix: c.BERTH_REDIS_KEY_PREFIX,
    decider: validateAutoscalerSettings({
      stableWindowMs: c.BERTH_AUTOSCALER_STABLE_WINDOW_MS,
      panicWindowMs: c.BERTH_AUTOSCALER_PANIC_WINDOW_MS,
      panicThreshold: c.BERTH_AUTOSCALER_PANIC_THRESHOLD,
      maxScaleDownRate: c.BERTH_AUTOSCALER_MAX_SCALE_DOWN_RATE,
      maxScaleUpRate: c.BERTH_AUTOSCALER_MAX_SCALE_UP_RATE,
      scaleToZeroGraceMs: c.BERTH_AUTOSCALER_SCALE_TO_ZERO_GRACE_MS,
    }),
  };
}
