import type Redis from 'ioredis';
import type { Logger } from 'pino';
import { RedisKey, routeKey, type RouteEntry } from '@berth/contracts';
import type { SchedulerRepository } from '@berth/db';

/**
 * Publishes the routing table (RedisKey.routes) from Postgres. Services are marked dirty by
 * reconciles and replica reports; a flush every `flushMs` rebuilds their entries in one query,
 * writes only entries whose content changed, and announces each changed field on the channel.
 * Deleted services with nothing left running are removed from the table.
 *
 * A field (`<project>/<service>`) belongs to the service whose id its entry carries. A deleted
 * service's name may already belong to a new live service: the live one always writes its entry,
 * while a deleted one (still draining, or gone) only writes or removes the field while the entry
 * there is its own (or absent), so its leftovers never replace or drop the new service's route.
 * The check is a read then a write (not atomic across scheduler instances); a lost entry is
 * rewritten by the live service's next flush (every reconcile and the periodic resync mark it).
 */
export class RoutePublisher {
  private dirty = new Set<string>();
  private timer: NodeJS.Timeout | null = null;
  private flushing: Promise<void> | null = null;
  /** Field each service was last published under (a rename would otherwise leave a stale field). */
  private fields = new Map<string, string>();

  constructor(
    private readonly repo: SchedulerRepository,
    private readonly redis: Redis,
    private readonly log: Logger,
    private readonly flushMs: number,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.flush().catch((e) => this.log.error({ err: e }, 'route flush failed')), this.flushMs);
  }

  /**
   * Marks a service's entry for the next flush. `urgent` (a replica became READY or stopped being
   * ready) flushes on the next turn instead of waiting up to `flushMs`: a request held for a cold
   * start is forwarded as soon as the entry changes, and a dead replica leaves the table at once.
   */
  markDirty(serviceId: string, urgent = false): void {
    this.dirty.add(serviceId);
    if (urgent) this.flushSoon();
  }

  private soon = false;
  private flushSoon(): void {
    if (this.soon) return;
    this.soon = true;
    setImmediate(() => {
      this.soon = false;
      const run = () => void this.flush().catch((e) => this.log.error({ err: e }, 'route flush failed'));
      // A flush under way took its ids before these were marked: run again once it is done.
      if (this.flushing) void this.flushing.then(run, run);
      else run();
    });
  }

  async flush(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.dirty.size === 0) return;
    const ids = [...this.dirty];
    this.dirty = new Set();
    this.flushing = this.publish(ids)
      .catch((e) => {
        for (const id of ids) this.dirty.add(id);
        throw e;
      })
      .finally(() => (this.flushing = null));
    return this.flushing;
  }

  private async publish(ids: string[]): Promise<void> {
    const { services, replicas } = await this.repo.routeData(ids);
    const byService = new Map<string, typeof replicas>();
    for (const r of replicas) {
      const list = byService.get(r.serviceId) ?? [];
      list.push(r);
      byService.set(r.serviceId, list);
    }
    const seen = new Set(services.map((s) => s.id));
    for (const s of services) {
      const field = routeKey(s.project.slug, s.name);
      const mine = byService.get(s.id) ?? [];
      const currentRaw = await this.redis.hget(RedisKey.routes, field);
      const current = currentRaw ? (JSON.parse(currentRaw) as RouteEntry) : null;
      if (s.deletedAt && current && current.serviceId !== s.id) {
        // The name belongs to another (live) service now: leave its entry alone.
        this.fields.delete(s.id);
        continue;
      }
      // A deleted service once its replicas are gone, and a worker (no port) always, have no route.
      if ((s.deletedAt && mine.length === 0) || s.port === null) {
        if (current && (await this.redis.hdel(RedisKey.routes, field)) > 0) await this.redis.publish(RedisKey.routesChannel, field);
        this.fields.delete(s.id);
        continue;
      }
      const entry: RouteEntry = {
        serviceId: s.id,
        project: s.project.slug,
        service: s.name,
        minScale: s.minScale,
        maxScale: s.maxScale,
        targetConcurrency: s.targetConcurrency,
        desiredReplicas: s.deletedAt ? 0 : s.desiredReplicas,
        endpoints: mine
          .filter((r) => r.state === 'READY' && r.address && r.port)
          .map((r) => ({ replicaId: r.id, revisionId: r.revisionId, address: r.address!, port: r.port! })),
        startingReplicas: mine.filter((r) => r.state !== 'READY').length,
        updatedAt: new Date().toISOString(),
      };
      if (current && sameRoute(current, entry)) continue;
      await this.redis.hset(RedisKey.routes, field, JSON.stringify(entry));
      await this.redis.publish(RedisKey.routesChannel, field);
      const old = this.fields.get(s.id);
      if (old && old !== field) await this.dropOwnField(old, s.id);
      this.fields.set(s.id, field);
    }
    // Services gone from the database entirely (hard-deleted): drop the field we know.
    for (const id of ids) {
      if (seen.has(id)) continue;
      const field = this.fields.get(id);
      if (field) await this.dropOwnField(field, id);
      this.fields.delete(id);
    }
  }

  /** Removes `field` only while its entry is this service's. */
  private async dropOwnField(field: string, serviceId: string): Promise<void> {
    const raw = await this.redis.hget(RedisKey.routes, field);
    if (!raw || (JSON.parse(raw) as RouteEntry).serviceId !== serviceId) return;
    if ((await this.redis.hdel(RedisKey.routes, field)) > 0) await this.redis.publish(RedisKey.routesChannel, field);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.flush().catch(() => undefined);
  }
}

function sameRoute(a: RouteEntry, b: RouteEntry): boolean {
  const strip = ({ updatedAt: _u, ...rest }: RouteEntry) => rest;
  return JSON.stringify(strip(a)) === JSON.stringify(strip(b));
}
