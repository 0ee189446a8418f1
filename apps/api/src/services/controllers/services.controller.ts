import { Body, Controller, Delete, Get, HttpCode, Param, ParseIntPipe, Patch, Post, Put, Query, Req, Res } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiProduces, ApiResponse, ApiTags } from '@nestjs/swagger';
import { REGISTRY_REFUSALS } from '../../images/controllers/images.controller';
import type { Request, Response } from 'express';
import { DomainError, ErrorCode } from '@berth/contracts';
import { CurrentActor, CurrentProject, ProjectRole, type Actor } from '../../auth/access.decorators';
import type { ProjectContext } from '../../auth/principal';
import { PageQuery, pageRequest } from '../../common/pagination/pagination';
import { CreateServiceInput, DeployInput, DiffQuery, LogsQuery, PatchServiceInput, RollbackInput, ScaleInput } from '../inputs/service.inputs';
import { LogsService } from '../services/logs.service';
import { ServicesService } from '../services/services.service';

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
  ) {}

  @Post()
  @ProjectRole('deployer')
  @ApiOperation({ summary: 'Create a service: resolves the image (pins its digest) and creates revision 1' })
  @ApiResponse({ status: 422, description: REGISTRY_REFUSALS })
  create(@CurrentProject() p: ProjectContext, @CurrentActor() a: Actor, @Body() body: CreateServiceInput) {
    return this.svc.create(p, a, body);
  }

  @Get()
  @ProjectRole('viewer')
  list(@CurrentProject() p: ProjectContext, @Query() q: PageQuery) {
    return this.svc.list(p, pageRequest(q));
  }

  @Get(':name')
  @ProjectRole('viewer')
  @ApiOperation({ summary: 'Service detail: desired/ready replicas, active revision, URL' })
  get(@CurrentProject() p: ProjectContext, @Param('name') name: string) {
    return this.svc.detail(p, name);
  }

  @Patch(':name')
  @ProjectRole('deployer')
  @ApiOperation({ summary: 'Change configuration; a new revision only when what runs changes' })
  patch(@CurrentProject() p: ProjectContext, @CurrentActor() a: Actor, @Param('name') name: string, @Body() body: PatchServiceInput) {
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
  @ApiOperation({ summary: 'New revision equal to an earlier one: by number, by tag, or (empty body) the previous one' })
  rollback(@CurrentProject() p: ProjectContext, @CurrentActor() a: Actor, @Param('name') name: string, @Body() body: RollbackInput) {
    return this.svc.rollback(p, a, name, body);
  }

  @Put(':name/scale')
  @ProjectRole('deployer')
  scale(@CurrentProject() p: ProjectContext, @CurrentActor() a: Actor, @Param('name') name: string, @Body() body: ScaleInput) {
    return this.svc.scale(p, a, name, body);
  }

  @Get(':name/revisions')
  @ProjectRole('viewer')
  revisions(@CurrentProject() p: ProjectContext, @Param('name') name: string, @Query() q: PageQuery) {
    return this.svc.listRevisions(p, name, pageRequest(q));
  }

  @Get(':name/revisions/diff')
  @ProjectRole('viewer')
  @ApiOperation({ summary: 'Field-level differences between two revisions' })
  diff(@CurrentProject() p: ProjectContext, @Param('name') name: string, @Query() q: DiffQuery) {
    return this.svc.diff(p, name, q.from, q.to);
  }

  @Get(':name/revisions/:number')
  @ProjectRole('viewer')
  revision(@CurrentProject() p: ProjectContext, @Param('name') name: string, @Param('number', revisionNumber) n: number) {
    return this.svc.getRevision(p, name, n);
  }

  @Get(':name/replicas')
  @ProjectRole('viewer')
  @ApiOperation({ summary: 'Replicas; `pull {done, total, layers}` (bytes) while and after an image pull, when the agent recorded it' })
  async replicas(@CurrentProject() p: ProjectContext, @Param('name') name: string, @Query() q: PageQuery) {
    const page = await this.svc.replicas(p, name, pageRequest(q));
    const pull = await this.logs.pullProgress(page.items.map((r) => r.id)).catch(() => new Map());
    return { ...page, items: page.items.map((r) => ({ ...r, pull: pull.get(r.id) ?? null })) };
  }

  @Get(':name/logs')
  @ProjectRole('viewer')
  @ApiProduces('text/event-stream')
  @ApiOperation({ summary: 'Logs as Server-Sent Events: the last `tail` lines, then new ones with follow=1' })
  async logsStream(
    @CurrentProject() p: ProjectContext,
    @Param('name') name: string,
    @Query() q: LogsQuery,
    @Req() req: Request,
    @Res() res: Response,
  ) {
    await this.logs.stream(p, name, { follow: q.follow === '1' || q.follow === 'true', tail: q.tail ?? 100, replica: q.replica }, req, res);
  }
}
