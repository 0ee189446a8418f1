import { Inject, Injectable } from '@nestjs/common';
import type Redis from 'ioredis';
import { metricsPoint, minuteOf, RedisKey, type ServiceMetrics } from '@berth/contracts';
import type { ProjectContext } from '../auth/principal';
import { API_CONFIG, type ApiConfig } from '../config';
import { REDIS } from '../tokens';
import { ServicesService } from './services.service';

/**
 * A service's per-minute traffic history (libs/contracts service-metrics.ts): one HGETALL per minute
 * in one pipeline, oldest first. Minutes without a hash (no traffic, or before a Redis loss) are
 * zero / null points, so charts keep their time axis.
 */
@Injectable()
export class MetricsService {
  constructor(
    private readonly services: ServicesService,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
    @Inject(REDIS) private readonly redis: Redis,
  ) {}

  async history(project: ProjectContext, name: string, minutes: number, now = Date.now()): Promise<ServiceMetrics> {
    const s = await this.services.mustFind(project, name);
    const last = minuteOf(now);
    const first = last - minutes + 1;
    const prefix = this.config.BERTH_REDIS_KEY_PREFIX;
    const pipe = this.redis.pipeline();
    for (let m = first; m <= last; m++) pipe.hgetall(`${prefix}${RedisKey.serviceMetrics(s.id, m)}`);
    const results = (await pipe.exec()) ?? [];
    const points = results.map(([err, h], i) => metricsPoint(first + i, !err && h && typeof h === 'object' ? (h as Record<string, string>) : {}));
    return { service: s.name, stepSeconds: 60, points };
  }
}
