import { Body, Controller, Delete, Get, HttpCode, Param, Post, Put, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiResponse, ApiTags } from '@nestjs/swagger';
import { CurrentActor, CurrentProject, ProjectRole, type Actor } from '../auth/access.decorators';
import type { ProjectContext } from '../auth/principal';
import { PageQuery, pageRequest } from '../common/pagination/pagination';
import { ApiContractResponse } from '../common/validation/contract-schemas';
import { PutRegistryCredentialInput, ResolveImageInput } from './inputs/image.inputs';
import { ImagesService } from './images.service';
import { RegistryCredentialsService } from './registry-credentials.service';

/** What a 422 from an endpoint that resolves an image means (OpenAPI). */
export const REGISTRY_REFUSALS =
  'IMAGE_UNRESOLVABLE: unknown repository/tag, no manifest for the platform, or the registry refused access. ' +
  'REGISTRY_ADDRESS_REFUSED: the registry resolves to an address the registry address policy refuses (details.rule: loopback, private, ' +
  'cgnat, link-local, metadata, ...); allow it with BERTH_REGISTRY_ALLOW_PRIVATE (docs/oci.md).';

@ApiTags('images')
@ApiBearerAuth()
@Controller('v1')
export class ImagesController {
  constructor(
    private readonly images: ImagesService,
    private readonly credentials: RegistryCredentialsService,
  ) {}

  @Post('images')
  @ProjectRole('deployer')
  @ApiOperation({ summary: 'Resolve a reference at its registry and record the version pinned by digest' })
  @ApiResponse({ status: 422, description: REGISTRY_REFUSALS })
  resolve(@CurrentProject() project: ProjectContext, @CurrentActor() actor: Actor, @Body() body: ResolveImageInput) {
    return this.images.resolveAndRecord(project, actor, body.reference);
  }

  @Get('images')
  @ProjectRole('viewer')
  @ApiOperation({ summary: 'Images of the project, each with its newest digests: size, tags and the live services that run them' })
  @ApiContractResponse('Image', { list: true })
  list(@CurrentProject() project: ProjectContext, @Query() q: PageQuery) {
    return this.images.list(project, pageRequest(q));
  }

  @Get('images/:id/versions')
  @ProjectRole('viewer')
  versions(@CurrentProject() project: ProjectContext, @Param('id') id: string, @Query() q: PageQuery) {
    return this.images.versions(project, id, pageRequest(q));
  }

  @Get('images/:id/tags')
  @ProjectRole('viewer')
  tags(@CurrentProject() project: ProjectContext, @Param('id') id: string, @Query() q: PageQuery) {
    return this.images.tags(project, id, pageRequest(q, 'text'));
  }

  @Put('registry-credentials/:registry')
  @ProjectRole('admin')
  @ApiOperation({ summary: 'Store credentials for a registry host (encrypted at rest)' })
  putCredential(
    @CurrentProject() project: ProjectContext,
    @CurrentActor() actor: Actor,
    @Param('registry') registry: string,
    @Body() body: PutRegistryCredentialInput,
  ) {
    return this.credentials.put(project, actor, registry, body.username, body.password);
  }

  @Get('registry-credentials')
  @ProjectRole('admin')
  @ApiOperation({ summary: 'List registry credentials (never their secrets)' })
  listCredentials(@CurrentProject() project: ProjectContext, @Query() q: PageQuery) {
    return this.credentials.list(project, pageRequest(q));
  }

  @Delete('registry-credentials/:registry')
  @ProjectRole('admin')
  @HttpCode(204)
  async deleteCredential(@CurrentProject() project: ProjectContext, @CurrentActor() actor: Actor, @Param('registry') registry: string) {
    await this.credentials.delete(project, actor, registry);
  }
}
