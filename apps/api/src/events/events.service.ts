import { Injectable } from '@nestjs/common';
import type { EventOut } from '@berth/contracts';
import { EventRepository, type Event } from '@berth/db';
import type { ProjectContext } from '../auth/principal';
import { type PageRequest, toPage } from '../common/pagination/pagination';

/** The append-only timeline, newest first. Cursors are event ids. */
@Injectable()
export class EventsService {
  constructor(private readonly events: EventRepository) {}

  async list(project: ProjectContext, page: PageRequest, serviceId?: string) {
    const rows = await this.events.list(
      { projectId: project.id, ...(serviceId ? { serviceId } : {}) },
      page.limit + 1,
      page.after !== undefined ? BigInt(page.after) : undefined,
    );
    return toPage(rows, page.limit, (e) => e.id.toString(), eventOut);
  }
}

export const eventOut = (e: Event & { service?: { name: string } | null }): Omit<EventOut, 'createdAt'> & { createdAt: Date } => ({
  id: e.id.toString(),
  type: e.type,
  level: e.level,
  message: e.message,
  actor: e.actor,
  tokenId: e.tokenId,
  serviceId: e.serviceId,
  service: e.service?.name ?? null,
  revisionId: e.revisionId,
  replicaId: e.replicaId,
  nodeId: e.nodeId,
  data: e.data,
  createdAt: e.createdAt,
});
