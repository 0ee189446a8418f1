import { Body, Controller, Delete, Get, HttpCode, Param, ParseIntPipe, Patch, Post, Put, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiConflictResponse, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import { REGISTRY_REFUSALS } from '../images/images.controller';
import type { Request, Response } from 'express';
import { DomainError, ErrorCode, parseSince, SinceError } from '@berth/contracts';
import { CurrentActor, CurrentProject, ProjectRole, type Actor } from '../auth/access.decorators';
import type { ProjectContext } from '../auth/principal';
import { pageRequest } from '../common/pagination/pagination';
import { CreateServiceInputSchema, ServiceConfigInputSchema, type CreateServiceInput, type ServiceConfigInput } from '@berth/contracts';
import { ApiContractResponse } from '../common/validation/contract-schemas';
import { ApiContractBody, ContractBody } from '../common/validation/zod-body';
import { DeployInput, DiffQuery, LogsQuery, MetricsQuery, RollbackInput, ScaleInput } from './inputs/service.inputs';
import { DeletedPageQuery, DeletedQuery, deletedSelector } from './inputs/deleted.query';
import { LogsService } from './logs.service';
import { MetricsService } from './metrics.service';
import { ServicesService } from './services.service';

const revisionNumber = new ParseIntPipe({
  exceptionFactory: () => new DomainError(ErrorCode.Validation, 'revision number must be a positive integer', { field: 'number' }),
});

@ApiTags('services')
@ApiBearerAuth()
@Controller('v1/services')
export class ServicesController {
  constructor(
    private readonly svc: ServicesService,
    private readonly logs: LogsService,
    private readonly metrics: MetricsService,
  ) {}

  @Post()
  @ProjectRole('deployer')
  @ApiOperation({ summary: 'Create a service: resolves the image (pins its digest) and creates revision 1' })
  @ApiResponse({ status: 422, description: REGISTRY_REFUSALS })
  @ApiContractBody(CreateServiceInputSchema)
  @ApiContractResponse('ServiceDetail', { status: 201 })
  create(@CurrentProject() p: ProjectContext, @CurrentActor() a: Actor, @ContractBody(CreateServiceInputSchema) body: CreateServiceInput) {
    return this.svc.create(p, a, body);
  }

  @Get()
  @ProjectRole('viewer')
  @ApiContractResponse('ServiceSummary', { list: true })
  @ApiOperation({ summary: 'Live services, newest first, each with its replica counts (desired, ready, by state) and scaling bounds; `?deleted=true`: deleted services instead, newest deletion first (with ids and deletedAt)' })
  list(@CurrentProject() p: ProjectContext, @Query() q: DeletedPageQuery) {
    const deleted = deletedSelector(q);
    if (typeof deleted === 'string') {
      throw new DomainError(ErrorCode.Validation, 'deleted must be true or false when listing services', { field: 'deleted' });
    }
    return this.svc.list(p, pageRequest(q), deleted === true);
  }

  @Get(':name')
  @ProjectRole('viewer')
  @ApiOperation({ summary: 'Service detail: desired/ready replicas, active revision, URL; `?deleted=` reads a deleted service of that name' })
  @ApiContractResponse('ServiceDetail')
  get(@CurrentProject() p: ProjectContext, @Param('name') name: string, @Query() q: DeletedQuery) {
    return this.svc.detail(p, name, deletedSelector(q));
  }

  @Patch(':name')
  @ProjectRole('deployer')
  @ApiOperation({ summary: 'Change configuration; a new revision only when what runs changes' })
  @ApiContractBody(ServiceConfigInputSchema)
  patch(
    @CurrentProject() p: ProjectContext,
    @CurrentActor() a: Actor,
    @Param('name') name: string,
    @ContractBody(ServiceConfigInputSchema) body: ServiceConfigInput,
  ) {
    return this.svc.patch(p, a, name, body);
  }

  @Delete(':name')
  @ProjectRole('admin')
  @HttpCode(204)
  @ApiOperation({ summary: 'Delete: stops every replica, keeps the history' })
  async delete(@CurrentProject() p: ProjectContext, @CurrentActor() a: Actor, @Param('name') name: string) {
    await this.svc.delete(p, a, name);
  }

  @Post(':name/deployments')
  @ProjectRole('deployer')
  @ApiOperation({ summary: 'Deploy an image (or a tag of the current repository), resolved to its digest now' })
  @ApiResponse({ status: 422, description: REGISTRY_REFUSALS })
  deploy(@CurrentProject() p: ProjectContext, @CurrentActor() a: Actor, @Param('name') name: string, @Body() body: DeployInput) {
    return this.svc.deploy(p, a, name, body);
  }

  @Post(':name/rollback')
  @ProjectRole('deployer')
  @ApiOperation({
    summary: 'New revision equal to an earlier one: by number, by tag, or (empty body) the newest earlier revision that reached ACTIVE',
    description:
      'A target that never reached ACTIVE (FAILED, or superseded before it served) is refused with 409 naming why it failed, unless `force: true`.',
  })
  @ApiConflictResponse({ description: 'no earlier revision reached ACTIVE, or the target never became active and force was not given' })
  rollback(@CurrentProject() p: ProjectContext, @CurrentActor() a: Actor, @Param('name') name: string, @Body() body: RollbackInput) {
    return this.svc.rollback(p, a, name, body);
  }

  @Put(':name/scale')
  @ProjectRole('deployer')
  @ApiOperation({
    summary: 'Set the autoscaler\'s bounds: `replicas` alone sets the minimum (a floor the autoscaler never goes below); `min`/`max` set the bounds',
    description: 'The answer is the service detail; `scaling.summary` says in one sentence what the autoscaler will do, e.g. "min 3, max 10: the autoscaler keeps between 3 and 10 replicas with load (3 now)".',
  })
  @ApiContractResponse('ServiceDetail')
  scale(@CurrentProject() p: ProjectContext, @CurrentActor() a: Actor, @Param('name') name: string, @Body() body: ScaleInput) {
    return this.svc.scale(p, a, name, body);
  }

  @Get(':name/revisions')
  @ProjectRole('viewer')
  @ApiContractResponse('Revision', { list: true })
  @ApiOperation({ summary: 'Revision history, newest first; `?deleted=` reads a deleted service of that name' })
  revisions(@CurrentProject() p: ProjectContext, @Param('name') name: string, @Query() q: DeletedPageQuery) {
    return this.svc.listRevisions(p, name, pageRequest(q), deletedSelector(q));
  }

  @Get(':name/revisions/diff')
  @ProjectRole('viewer')
  @ApiOperation({ summary: 'Field-level differences between two revisions' })
  diff(@CurrentProject() p: ProjectContext, @Param('name') name: string, @Query() q: DiffQuery) {
    return this.svc.diff(p, name, q.from, q.to);
  }

  @Get(':name/revisions/:number')
  @ProjectRole('viewer')
  @ApiContractResponse('Revision')
  revision(@CurrentProject() p: ProjectContext, @Param('name') name: string, @Param('number', revisionNumber) n: number, @Query() q: DeletedQuery) {
    return this.svc.getRevision(p, name, n, deletedSelector(q));
  }

  @Get(':name/replicas')
  @ProjectRole('viewer')
  @ApiOperation({ summary: 'Replicas; `pull {done, total, layers, cached}` (bytes; cached: of layers already on the node) while and after an image pull, when the agent recorded it' })
  @ApiContractResponse('Replica', { list: true })
  async replicas(@CurrentProject() p: ProjectContext, @Param('name') name: string, @Query() q: DeletedPageQuery) {
    const page = await this.svc.replicas(p, name, pageRequest(q), deletedSelector(q));
    const pull = await this.logs.pullProgress(page.items.map((r) => r.id)).catch(() => new Map());
    return { ...page, items: page.items.map((r) => ({ ...r, pull: pull.get(r.id) ?? null })) };
  }

  @Get(':name/metrics')
  @ProjectRole('viewer')
  @ApiContractResponse('ServiceMetrics')
  @ApiOperation({
    summary:
      'Per-minute traffic history (requests/s, 5xx, latency p50/p95, ready replicas, cold starts), oldest first; kept 6 h in Redis, written by the gateways (every BERTH_GATEWAY_METRICS_FLUSH_MS) and the autoscaler',
  })
  metricsHistory(@CurrentProject() p: ProjectContext, @Param('name') name: string, @Query() q: MetricsQuery) {
    return this.metrics.history(p, name, q.minutes ?? 180);
  }

  @Get(':name/logs')
  @ProjectRole('viewer')
  @ApiProduces('text/event-stream')
  @ApiOperation({ summary: 'Logs as Server-Sent Events: the last `tail` lines (of those since `since`, when given), then new ones with follow=1' })
  async logsStream(
    @CurrentProject() p: ProjectContext,
    @Param('name') name: string,
    @Query() q: LogsQuery,
    @Req() req: Request,
    @Res() res: Response,
  ) {
    let since: number | undefined;
    if (q.since !== undefined) {
      try {
        since = parseSince(q.since, Date.now());
      } catch (e) {
        if (e instanceof SinceError) throw new DomainError(ErrorCode.Validation, e.message.replace(/^since/, 'since:'), { field: 'since' });
        throw e;
      }
    }
    await this.logs.stream(p, name, { follow: q.follow === '1' || q.follow === 'true', tail: q.tail ?? 100, replica: q.replica, since }, req, res);
  }
}
