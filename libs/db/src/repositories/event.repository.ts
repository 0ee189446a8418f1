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
  /** Newest first, each with its service's name (a deleted service's too) for project-wide timelines. */
  list(where: { projectId: string; serviceId?: string }, take: number, beforeId?: bigint): Promise<(Event & { service: { name: string } | null })[]> {
    return this.prisma.client.event.findMany({
      where: { ...where, ...(beforeId !== undefined ? { id: { lt: beforeId } } : {}) },
      include: { service: { select: { name: true } } },
      orderBy: { id: 'desc' },
      take,
    });
  }
}
