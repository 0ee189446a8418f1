import crypto from 'node:crypto';
import os from 'node:os';
import type { Logger, Registry } from '@berth/observability';
import type Redis from 'ioredis';
import type { AutoscalerLoopSettings } from './autoscaler.config';
import { AutoscalerLoop, AutoscalerStore, EnqueueReconcile } from './autoscaler.loop';

export { AutoscalerLoop } from './autoscaler.loop';
export type { AutoscalerStore, EnqueueReconcile } from './autoscaler.loop';
export { autoscalerSettings } from './autoscaler.config';
export type { AutoscalerConfig, AutoscalerLoopSettings } from './autoscaler.config';

export interface AutoscalerDeps {
  /** `new AutoscalerRepository(prisma)` from libs/db/src/repositories/autoscaler.repository. */
  repository: AutoscalerStore;
  /** Reads the gateways' concurrency samples and holds the leader lease. */
  redis: Redis;
  log: Logger;
  registry: Registry;
  clock?: () => number;
  /** From the scheduler's configuration: `autoscalerSettings(config)`. */
  settings: AutoscalerLoopSettings;
  /** How to trigger a reconcile: the scheduler's producer (`queues.enqueueReconcile`). */
  enqueueReconcile: EnqueueReconcile;
}

export interface RunningAutoscaler {
  loop: AutoscalerLoop;
  enabled: boolean;
  /** Starts ticking (no-op when disabled). */
  start(): void;
  stop(): Promise<void>;
}

/**
 * The autoscaler inside the scheduler process: `start()` ticks every BERTH_AUTOSCALER_TICK_MS. Gateway
 * wake-ups arrive on the `autoscale` queue, whose consumer is the scheduler's AutoscaleProcessor
 * (apps/scheduler/src/processors.ts), which hands them to `loop.wake`.
 */
export function createAutoscaler(deps: AutoscalerDeps): RunningAutoscaler {
  const { settings } = deps;
  const loop = new AutoscalerLoop({
    store: deps.repository,
    redis: deps.redis,
    enqueueReconcile: deps.enqueueReconcile,
    settings,
    clock: deps.clock ?? Date.now,
    log: deps.log.child({ component: 'autoscaler' }),
    registry: deps.registry,
    instanceId: `${os.hostname()}-${process.pid}-${crypto.randomBytes(3).toString('hex')}`,
  });
  if (!settings.enabled) {
    deps.log.info('autoscaler disabled (BERTH_AUTOSCALER_ENABLED=false)');
    return { loop, enabled: false, start: () => undefined, stop: async () => undefined };
  }
  let timer: NodeJS.Timeout | null = null;
  return {
    loop,
    enabled: true,
    start: () => {
      if (timer) return;
      timer = setInterval(() => void loop.tick().catch((e) => deps.log.warn({ err: e }, 'autoscaler tick failed')), settings.tickMs);
      deps.log.info({ tickMs: settings.tickMs, ...settings.decider }, 'autoscaler started');
    },
    stop: async () => {
      if (timer) clearInterval(timer);
      timer = null;
      await loop.resign();
    },
  };
}
