import { Injectable } from '@nestjs/common';
import { MapsPrismaErrors } from '../errors';
import { PrismaService } from '../prisma.service';
import type { Revision } from '../generated/prisma/client';
import { pageQuery, type PageArgs } from './project.repository';

@Injectable()
@MapsPrismaErrors('revision')
export class RevisionRepository {
  constructor(private readonly prisma: PrismaService) {}

  /** Newest first. */
  list(serviceId: string, page: PageArgs): Promise<Revision[]> {
    return this.prisma.client.revision.findMany({ where: { serviceId }, orderBy: { number: 'desc' }, ...pageQuery(page) });
  }

  findByNumber(serviceId: string, number: number): Promise<Revision | null> {
    return this.prisma.client.revision.findUnique({ where: { serviceId_number: { serviceId, number } } });
  }

  /** Revisions numbered below `before`, newest first (rollback targets). */
  listBefore(serviceId: string, before: number, take: number): Promise<Revision[]> {
    return this.prisma.client.revision.findMany({
      where: { serviceId, number: { lt: before } },
      orderBy: { number: 'desc' },
      take,
    });
  }
}
