import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentProject, ProjectRole } from '../auth/access.decorators';
import type { ProjectContext } from '../auth/principal';
import { PageQuery, pageRequest } from '../common/pagination/pagination';
import { ApiContractResponse } from '../common/validation/contract-schemas';
import { DeletedPageQuery, deletedSelector } from '../services/inputs/deleted.query';
import { ServicesService } from '../services/services.service';
import { EventsService } from './events.service';

@ApiTags('events')
@ApiBearerAuth()
@Controller('v1')
export class EventsController {
  constructor(
    private readonly events: EventsService,
    private readonly services: ServicesService,
  ) {}

  @Get('events')
  @ProjectRole('viewer')
  @ApiOperation({ summary: "The project's timeline: who did what, when, from which token; each event names its service" })
  @ApiContractResponse('Event', { list: true })
  list(@CurrentProject() project: ProjectContext, @Query() q: PageQuery) {
    return this.events.list(project, pageRequest(q, 'int'));
  }

  @Get('services/:name/events')
  @ProjectRole('viewer')
  @ApiOperation({ summary: "A service's timeline, newest first; `?deleted=` reads a deleted service of that name" })
  @ApiContractResponse('Event', { list: true })
  async forService(@CurrentProject() project: ProjectContext, @Param('name') name: string, @Query() q: DeletedPageQuery) {
    const s = await this.services.findForRead(project, name, deletedSelector(q));
    return this.events.list(project, pageRequest(q, 'int'), s.id);
  }
}
