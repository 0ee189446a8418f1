import { Controller, Get, Param, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentProject, ProjectRole } from '../../auth/access.decorators';
import type { ProjectContext } from '../../auth/principal';
import { PageQuery, pageRequest } from '../../common/pagination/pagination';
import { ServicesService } from '../../services/services/services.service';
import { EventsService } from '../services/events.service';

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
  @ApiOperation({ summary: "The project's timeline: who did what, when, from which token" })
  list(@CurrentProject() project: ProjectContext, @Query() q: PageQuery) {
    return this.events.list(project, pageRequest(q, 'int'));
  }

  @Get('services/:name/events')
  @ProjectRole('viewer')
  async forService(@CurrentProject() project: ProjectContext, @Param('name') name: string, @Query() q: PageQuery) {
    const s = await this.services.mustFind(project, name);
    return this.events.list(project, pageRequest(q, 'int'), s.id);
  }
}
