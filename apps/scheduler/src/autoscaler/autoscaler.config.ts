import { z } from 'zod';
import { bool, durationMs, loadConfig } from '@berth/config';
import { AutoscalerSettings, validateAutoscalerSettings } from '@berth/scheduling';

/** Environment of the autoscaler loop (read by `startAutoscaler` when no settings are injected). */
export const autoscalerConfigSchema = z.object({
  BERTH_AUTOSCALER_ENABLED: bool(true),
  BERTH_AUTOSCALER_TICK_MS: z.coerce.number().int().min(50).default(1000),
  BERTH_AUTOSCALER_STABLE_WINDOW_MS: durationMs(60_000),
  BERTH_AUTOSCALER_PANIC_WINDOW_MS: durationMs(6_000),
  BERTH_AUTOSCALER_PANIC_THRESHOLD: z.coerce.number().min(1).default(2),
  BERTH_AUTOSCALER_MAX_SCALE_DOWN_RATE: z.coerce.number().gt(1).default(2),
  BERTH_AUTOSCALER_MAX_SCALE_UP_RATE: z.coerce.number().gt(1).default(1000),
  BERTH_AUTOSCALER_SCALE_TO_ZERO_GRACE_MS: durationMs(30_000),
  /** Gateways whose last concurrency write is older than this are ignored. */
  BERTH_AUTOSCALER_SAMPLE_MAX_AGE_MS: durationMs(3_000),
  /** Same prefix as the gateway's (routing table and concurrency keys). */
  BERTH_REDIS_KEY_PREFIX: z.string().default(''),
  BERTH_QUEUE_PREFIX: z.string().min(1).default('bull'),
});

export interface AutoscalerLoopSettings {
  enabled: boolean;
  tickMs: number;
  sampleMaxAgeMs: number;
  keyPrefix: string;
  bullPrefix: string;
  decider: AutoscalerSettings;
}

export function autoscalerSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): AutoscalerLoopSettings {
  const c = loadConfig(autoscalerConfigSchema, env);
  return {
    enabled: c.BERTH_AUTOSCALER_ENABLED,
    tickMs: c.BERTH_AUTOSCALER_TICK_MS,
    sampleMaxAgeMs: c.BERTH_AUTOSCALER_SAMPLE_MAX_AGE_MS,
    keyPrefix: c.BERTH_REDIS_KEY_PREFIX,
    bullPrefix: c.BERTH_QUEUE_PREFIX,
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
