import { Controller, Get, Inject, Res } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { Public } from '../auth/access.decorators';
import type { Response } from 'express';
import { PrismaService } from '@berth/db';
import { HealthCheck, Registry, redisCheck, runChecks } from '@berth/observability';
import Redis from 'ioredis';
import { METRICS_REGISTRY, REDIS } from '../tokens';

/** /healthz: the process is alive. /readyz: Postgres and Redis answer. /metrics: Prometheus text. */
@ApiExcludeController()
@Public()
@Controller()
export class HealthController {
  private readonly checks: HealthCheck[];

  constructor(
    prisma: PrismaService,
    @Inject(REDIS) redis: Redis,
    @Inject(METRICS_REGISTRY) private readonly registry: Registry,
  ) {
    this.checks = [{ name: 'postgres', check: () => prisma.ping() }, redisCheck(redis)];
  }

  @Get('healthz')
  healthz() {
    return { status: 'ok', app: 'api' };
  }

  @Get('readyz')
  async readyz(@Res() res: Response) {
    const r = await runChecks(this.checks);
    res.status(r.status === 'ok' ? 200 : 503).json({ app: 'api', ...r });
  }

  @Get('metrics')
  async metrics(@Res() res: Response) {
    res.type(this.registry.contentType).send(await this.registry.metrics());
  }
}
