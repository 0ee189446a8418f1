import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiHeader, ApiOperation, ApiTags } from '@nestjs/swagger';
import { Authenticated, CurrentActor, CurrentPrincipal, CurrentProject, ProjectRole, type Actor } from '../auth/access.decorators';
import type { Principal, ProjectContext } from '../auth/principal';
import { SecretResponse } from '../common/idempotency/secret-response';
import { PageQuery, pageRequest } from '../common/pagination/pagination';
import { AddMemberInput, CreateProjectInput, CreateTokenInput } from './inputs/project.inputs';
import { ProjectsService } from './projects.service';

const projectHeader = ApiHeader({ name: 'X-Berth-Project', required: false, description: 'project slug (login tokens); API tokens imply their project' });

@ApiTags('projects')
@ApiBearerAuth()
@Controller('v1')
export class ProjectsController {
  constructor(private readonly svc: ProjectsService) {}

  @Post('projects')
  @Authenticated()
  @ApiOperation({ summary: 'Create a project (users only); the caller becomes its admin' })
  create(@CurrentPrincipal() p: Principal, @Body() body: CreateProjectInput) {
    return this.svc.create(p, body);
  }

  @Get('projects')
  @Authenticated()
  @ApiOperation({ summary: 'Projects I belong to (an API token sees its own project)' })
  list(@CurrentPrincipal() p: Principal, @Query() q: PageQuery) {
    return this.svc.listMine(p, pageRequest(q));
  }

  @Post('members')
  @ProjectRole('admin')
  @projectHeader
  @ApiOperation({ summary: 'Add a member (creating the user when a password is given) or change their role' })
  addMember(@CurrentProject() project: ProjectContext, @CurrentActor() actor: Actor, @Body() body: AddMemberInput) {
    return this.svc.addMember(project, actor, body);
  }

  @Get('members')
  @ProjectRole('viewer')
  @projectHeader
  listMembers(@CurrentProject() project: ProjectContext, @Query() q: PageQuery) {
    return this.svc.listMembers(project, pageRequest(q));
  }

  @Delete('members/:userId')
  @ProjectRole('admin')
  @projectHeader
  @HttpCode(204)
  async removeMember(@CurrentProject() project: ProjectContext, @CurrentActor() actor: Actor, @Param('userId') userId: string) {
    await this.svc.removeMember(project, actor, userId);
  }

  @Post('tokens')
  @ProjectRole('admin')
  @projectHeader
  @SecretResponse('token')
  @ApiOperation({ summary: 'Create an API token; the secret is in this response only (an Idempotency-Key replay is a 409 IDEMPOTENT_REPLAY_SECRET)' })
  createToken(@CurrentProject() project: ProjectContext, @CurrentPrincipal() p: Principal, @Body() body: CreateTokenInput) {
    return this.svc.createToken(project, p, body);
  }

  @Get('tokens')
  @ProjectRole('admin')
  @projectHeader
  @ApiOperation({ summary: 'List API tokens (never their secrets)' })
  listTokens(@CurrentProject() project: ProjectContext, @Query() q: PageQuery) {
    return this.svc.listTokens(project, pageRequest(q));
  }

  @Delete('tokens/:id')
  @ProjectRole('admin')
  @projectHeader
  @HttpCode(204)
  async revokeToken(@CurrentProject() project: ProjectContext, @CurrentActor() actor: Actor, @Param('id') id: string) {
    await this.svc.revokeToken(project, actor, id);
  }
}
