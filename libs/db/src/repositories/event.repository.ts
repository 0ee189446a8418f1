import { Injectable } from '@nestjs/common';
import { MapsPrismaErrors } from '../errors';
import { PrismaService } from '../prisma.service';
import type { Event, EventLevel } from '../generated/prisma/client';

export interface NewEvent {
  projectId?: string | null;
  serviceId?: string | null;
  revisionId?: string | null;
  replicaId?: string | null;
  nodeId?: string | null;
  type: string;
  level?: EventLevel;
  message: string;
  data?: Record<string, unknown>;
  actor: string;
  tokenId?: string | null;
}

@Injectable()
@MapsPrismaErrors('event')
export class EventRepository {
  constructor(private readonly prisma: PrismaService) {}

  append(e: NewEvent): Promise<Event> {
    return this.prisma.client.event.create({ data: { ...e, data: (e.data ?? {}) as never } });
  }

  /** Newest first; `beforeId` continues a page. */
  list(where: { projectId: string; serviceId?: string }, take: number, beforeId?: bigint): Promise<Event[]> {
    return this.prisma.client.event.findMany({
      where: { ...where, ...(beforeId !== undefined ? { id: { lt: beforeId } } : {}) },
      orderBy: { id: 'desc' },
      take,
    });
  }
}
