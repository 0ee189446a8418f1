import { MetricsField, minuteOf, RedisKey, SERVICE_METRICS_RETENTION_MINUTES, type WakeJob } from '@berth/contracts';
import { Counter, Gauge, type Logger, type Registry } from '@berth/observability';
import type Redis from 'ioredis';
import type { AutoscaledService, ScaleWrite } from '@berth/db';
import {
  ConcurrencyWindow,
  DeciderState,
  decideScale,
  initialDeciderState,
} from '@berth/scheduling';
import type { AutoscalerLoopSettings } from './autoscaler.config';
import { ConcurrencyReader } from './concurrency.reader';

/** The part of AutoscalerRepository the loop uses (a fake can stand in for unit tests). */
export interface AutoscalerStore {
  listAutoscaled(): Promise<AutoscaledService[]>;
  findForWake(serviceId: string): Promise<AutoscaledService | null>;
  applyScale(w: ScaleWrite): Promise<boolean>;
}

export type EnqueueReconcile = (serviceId: string, cause: string) => Promise<void>;

/**
 * One tick: read every live service and the summed gateway concurrency, append a sample to each
 * service's window, and — only on the leader, so several schedulers do not fight — ask the pure decider
 * for a replica count. A changed count is written (with an Event holding the decision's inputs) and a
 * reconcile is enqueued. Wake jobs from gateways bypass the windows: desiredReplicas = max(1, min) at once.
 */
export class AutoscalerLoop {
  private readonly windows = new Map<string, ConcurrencyWindow>();
  private readonly states = new Map<string, DeciderState>();
  /**
   * Last replica count seen per service, when it changed, and whether someone else changed it (a
   * manual scale through the API) rather than this loop (a decision or a wake).
   */
  private readonly lastChange = new Map<string, { desired: number; at: number; external: boolean }>();
  private readonly reader: ConcurrencyReader;
  /** Ready replicas last written into each service's per-minute history, and for which minute. */
  private readonly historyWritten = new Map<string, { minute: number; ready: number }>();
  private readonly leaderKey: string;
  private readonly metrics;
  private ticking = false;

  constructor(
    private readonly deps: {
      store: AutoscalerStore;
      redis: Redis;
      enqueueReconcile: EnqueueReconcile;
      settings: AutoscalerLoopSettings;
      clock: () => number;
      log: Logger;
      registry: Registry;
      instanceId: string;
    },
  ) {
    this.reader = new ConcurrencyReader({ redis: deps.redis, keyPrefix: deps.settings.keyPrefix, maxAgeMs: deps.settings.sampleMaxAgeMs });
    this.leaderKey = `${deps.settings.keyPrefix}${RedisKey.autoscalerLeader}`;
    this.metrics = {
      decisions: new Counter({
        name: 'berth_autoscaler_decisions_total',
        help: 'Replica count changes written by the autoscaler',
        labelNames: ['direction', 'mode'] as const,
        registers: [deps.registry],
      }),
      wakes: new Counter({ name: 'berth_autoscaler_wakes_total', help: 'Scale-from-zero wake-ups applied', registers: [deps.registry] }),
      observed: new Gauge({
        name: 'berth_autoscaler_observed_concurrency',
        help: 'Average concurrency per service over the stable and panic windows',
        labelNames: ['service', 'window'] as const,
        registers: [deps.registry],
      }),
    };
  }

  /** Runs one tick unless the previous one is still running. Returns whether this instance decided. */
  async tick(): Promise<boolean> {
    if (this.ticking) return false;
    this.ticking = true;
    try {
      return await this.runTick();
    } finally {
      this.ticking = false;
    }
  }

  private async runTick(): Promise<boolean> {
    const { store, settings, log } = this.deps;
    const now = this.deps.clock();
    const [services, samples, leader] = await Promise.all([store.listAutoscaled(), this.reader.read(now), this.claimLeadership()]);
    const live = new Set<string>();
    for (const s of services) {
      live.add(s.id);
      let w = this.windows.get(s.id);
      if (!w) this.windows.set(s.id, (w = new ConcurrencyWindow(settings.decider.stableWindowMs)));
      if (samples) w.add({ at: now, concurrency: samples.get(s.id) ?? 0 });
      else w.prune(now);
      const seen = this.lastChange.get(s.id);
      if (!seen || seen.desired !== s.desiredReplicas) this.lastChange.set(s.id, { desired: s.desiredReplicas, at: now, external: true });
      if (!leader) continue;
      const d = decideScale({
        now,
        settings: settings.decider,
        target: {
          minScale: s.minScale,
          maxScale: s.maxScale,
          targetConcurrency: s.targetConcurrency,
          currentDesired: s.desiredReplicas,
          readyReplicas: s.readyReplicas,
        },
        samples: w.values(),
        state: this.states.get(s.id) ?? initialDeciderState(),
      });
      this.states.set(s.id, d.state);
      if (d.stableConcurrency !== null) this.metrics.observed.set({ service: s.id, window: 'stable' }, d.stableConcurrency);
      if (d.panicConcurrency !== null) this.metrics.observed.set({ service: s.id, window: 'panic' }, d.panicConcurrency);
      if (d.desired === s.desiredReplicas) continue;
      // For a whole stable window after the count changed, no scale-down (a scale-up or a manual scale
      // must be observed under its own load before it is undone, as in Knative), and after a manual
      // scale no change at all unless demand panics: the user's number stands until the windows have
      // seen traffic under it. A request for a service at zero still wakes it (wake()).
      const change = this.lastChange.get(s.id)!;
      if (now - change.at < settings.decider.stableWindowMs) {
        if (d.desired < s.desiredReplicas) continue;
        if (change.external && d.mode !== 'panic') continue;
      }
      const inputs = {
        from: s.desiredReplicas,
        to: d.desired,
        mode: d.mode,
        reason: d.reason,
        stableConcurrency: round(d.stableConcurrency),
        panicConcurrency: round(d.panicConcurrency),
        targetConcurrency: s.targetConcurrency,
        readyReplicas: s.readyReplicas,
        minScale: s.minScale,
        maxScale: s.maxScale,
        stableWindowMs: settings.decider.stableWindowMs,
        panicWindowMs: settings.decider.panicWindowMs,
      };
      const written = await store.applyScale({
        serviceId: s.id,
        from: s.desiredReplicas,
        to: d.desired,
        event: {
          type: 'service.autoscaled',
          message: `autoscaler: ${s.desiredReplicas} → ${d.desired} replicas (${d.reason}; stable ${inputs.stableConcurrency}, panic ${inputs.panicConcurrency} in flight, target ${s.targetConcurrency} per replica)`,
          data: inputs,
        },
      });
      if (!written) continue; // changed under us (manual scale, delete): the next tick sees the new value
      this.lastChange.set(s.id, { desired: d.desired, at: now, external: false });
      this.metrics.decisions.inc({ direction: d.desired > s.desiredReplicas ? 'up' : 'down', mode: d.mode });
      log.info({ serviceId: s.id, ...inputs }, 'autoscaled');
      await this.deps.enqueueReconcile(s.id, 'autoscale');
    }
    if (leader) await this.writeReplicaHistory(services, now);
    for (const id of [...this.windows.keys()]) {
      if (!live.has(id)) {
        this.windows.delete(id);
        this.states.delete(id);
        this.lastChange.delete(id);
        this.historyWritten.delete(id);
      }
    }
    return leader;
  }

  /** A gateway saw a request for a scaled-to-zero service: one replica (or min) now, no waiting for windows. */
  async wake(job: WakeJob): Promise<boolean> {
    const s = await this.deps.store.findForWake(job.serviceId);
    if (!s || s.desiredReplicas > 0) return false;
    const to = Math.max(1, s.minScale);
    // The idle history must not send it straight back to zero: the grace starts again from now.
    this.states.set(s.id, initialDeciderState());
    const written = await this.deps.store.applyScale({
      serviceId: s.id,
      from: 0,
      to,
      event: {
        type: 'service.woken',
        message: `autoscaler: 0 → ${to} replicas (a request arrived while scaled to zero)`,
        data: { from: 0, to, mode: 'wake', requestedAt: job.at, minScale: s.minScale },
      },
    });
    if (!written) return false;
    this.lastChange.set(s.id, { desired: to, at: this.deps.clock(), external: false });
    this.metrics.wakes.inc();
    this.deps.log.info({ serviceId: s.id, to }, 'woken from zero');
    await this.deps.enqueueReconcile(s.id, 'wake');
    return true;
  }

  /**
   * The most replicas ready at once in each minute, in each service's per-minute history
   * (libs/contracts service-metrics.ts): written when a minute starts or the count goes above what
   * that minute already holds (a scale-down within the minute does not erase its peak); best effort
   * (a failed write is retried next tick).
   */
  private async writeReplicaHistory(services: AutoscaledService[], now: number): Promise<void> {
    const minute = minuteOf(now);
    const multi = this.deps.redis.multi();
    const written: [string, { minute: number; ready: number }][] = [];
    for (const s of services) {
      const last = this.historyWritten.get(s.id);
      if (last && last.minute === minute && last.ready >= s.readyReplicas) continue;
      const key = `${this.deps.settings.keyPrefix}${RedisKey.serviceMetrics(s.id, minute)}`;
      multi.hset(key, MetricsField.replicasReady, s.readyReplicas).expire(key, SERVICE_METRICS_RETENTION_MINUTES * 60);
      written.push([s.id, { minute, ready: s.readyReplicas }]);
    }
    if (written.length === 0) return;
    try {
      await multi.exec();
      for (const [id, w] of written) this.historyWritten.set(id, w);
    } catch (e) {
      this.deps.log.warn({ err: e }, 'could not write replica counts into the traffic history');
    }
  }

  /** Leader election with a lease: SET NX PX, renewed by the holder each tick. */
  private async claimLeadership(): Promise<boolean> {
    const ttl = Math.max(3 * this.deps.settings.tickMs, 2000);
    const { redis, instanceId } = this.deps;
    const got = await redis.set(this.leaderKey, instanceId, 'PX', ttl, 'NX');
    if (got === 'OK') return true;
    const renewed = await redis.eval(
      "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end",
      1,
      this.leaderKey,
      instanceId,
      String(ttl),
    );
    return renewed === 1;
  }

  async resign(): Promise<void> {
    await this.deps.redis
      .eval("if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end", 1, this.leaderKey, this.deps.instanceId)
      .catch(() => undefined);
  }
}

const round = (v: number | null) => (v === null ? null : Math.round(v * 1000) / 1000);

