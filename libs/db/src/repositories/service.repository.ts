import { Injectable } from '@nestjs/common';
import { MapsPrismaErrors } from '../errors';
import { PrismaService } from '../prisma.service';
import type { Prisma, Replica, Revision, Service } from '../generated/prisma/client';
import { pageQuery, type PageArgs } from './project.repository';

/** The columns of Service an api write may set (everything but identity, bookkeeping and the active revision). */
export type ServiceFields = Omit<
  Prisma.ServiceUncheckedCreateInput,
  'id' | 'projectId' | 'name' | 'activeRevisionId' | 'generation' | 'deletedAt' | 'createdAt' | 'updatedAt' | 'revisions' | 'replicas' | 'events'
>;

export interface NewRevision {
  imageVersionId: string;
  imageRef: string;
  imageDigest: string;
  config: Record<string, unknown>;
  reason: 'CREATE' | 'DEPLOY' | 'CONFIG' | 'ROLLBACK';
  sourceRevisionId?: string | null;
  createdBy: string;
  createdByTokenId?: string | null;
}

export type ServiceWithRevision = Service & { activeRevision: Revision | null };

const SERVICE_DATES = ['deletedAt', 'createdAt', 'updatedAt'] as const;
const REVISION_DATES = ['createdAt', 'activatedAt', 'rolloutStartedAt'] as const;

/** row_to_json renders timestamp(3) columns (UTC, no zone) as ISO text without 'Z'; Prisma returns them as Dates. */
function withDates(row: Record<string, unknown>, fields: readonly string[]): Record<string, unknown> {
  for (const f of fields) {
    const v = row[f];
    if (typeof v === 'string') row[f] = new Date(v.endsWith('Z') ? v : `${v}Z`);
  }
  return row;
}

/** Interactive transactions wait for a pooled connection under load instead of failing after Prisma's 2 s default. */
const TX = { maxWait: 10_000, timeout: 15_000 };

@Injectable()
@MapsPrismaErrors('service')
export class ServiceRepository {
  constructor(private readonly prisma: PrismaService) {}

  findByName(projectId: string, name: string): Promise<ServiceWithRevision | null> {
    return this.prisma.client.service.findFirst({
      where: { projectId, name, deletedAt: null },
      include: { activeRevision: true },
    });
  }

  /**
   * The service detail read in one round trip: the live service, its active revision and its
   * replica counts by state. Same shapes as findByName + replicaCounts, which cost three queries
   * (Prisma fetches an include with a second query); this is the api's hottest read.
   */
  async findDetailByName(projectId: string, name: string): Promise<{ service: ServiceWithRevision; counts: Record<string, number> } | null> {
    const rows = await this.prisma.client.$queryRaw<{ s: Record<string, unknown>; r: Record<string, unknown> | null; c: Record<string, number> | null }[]>`
      select row_to_json(s.*) as s, row_to_json(r.*) as r,
        (select json_object_agg(x.state, x.n) from (
           select state, count(*)::int as n from "Replica" where "serviceId" = s.id group by state) x) as c
      from "Service" s left join "Revision" r on r.id = s."activeRevisionId"
      where s."projectId" = ${projectId}::uuid and s.name = ${name} and s."deletedAt" is null
      limit 1`;
    const row = rows[0];
    if (!row) return null;
    const service = withDates(row.s, SERVICE_DATES) as unknown as Service;
    const activeRevision = row.r ? (withDates(row.r, REVISION_DATES) as unknown as Revision) : null;
    return { service: { ...service, activeRevision }, counts: row.c ?? {} };
  }

  /**
   * Deleted services that had this name, newest deletion first (a name is unique only among live
   * services, so several deleted ones may share it). `id` narrows to one of them.
   */
  findDeletedByName(projectId: string, name: string, id?: string): Promise<ServiceWithRevision | null> {
    return this.prisma.client.service.findFirst({
      where: { projectId, name, deletedAt: { not: null }, ...(id ? { id } : {}) },
      include: { activeRevision: true },
      orderBy: [{ deletedAt: 'desc' }, { id: 'desc' }],
    });
  }

  /** The project's deleted services, newest deletion first. */
  listDeleted(projectId: string, page: PageArgs): Promise<ServiceWithRevision[]> {
    return this.prisma.client.service.findMany({
      where: { projectId, deletedAt: { not: null } },
      include: { activeRevision: true },
      orderBy: [{ deletedAt: 'desc' }, { id: 'desc' }],
      ...pageQuery(page),
    });
  }

  list(projectId: string, page: PageArgs): Promise<ServiceWithRevision[]> {
    return this.prisma.client.service.findMany({
      where: { projectId, deletedAt: null },
      include: { activeRevision: true },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      ...pageQuery(page),
    });
  }

  /**
   * A page of live services with each one's replica counts by state. The counts of the whole page come
   * from one grouped query (not one per service), whatever the page size.
   */
  async listWithCounts(projectId: string, page: PageArgs): Promise<{ service: ServiceWithRevision; counts: Record<string, number> }[]> {
    const services = await this.list(projectId, page);
    if (services.length === 0) return [];
    const rows = await this.prisma.client.replica.groupBy({
      by: ['serviceId', 'state'],
      where: { serviceId: { in: services.map((s) => s.id) } },
      _count: { _all: true },
    });
    const counts = new Map<string, Record<string, number>>();
    for (const r of rows) {
      const c = counts.get(r.serviceId) ?? {};
      c[r.state] = r._count._all;
      counts.set(r.serviceId, c);
    }
    return services.map((service) => ({ service, counts: counts.get(service.id) ?? {} }));
  }

  /** Creates the service with revision 1 as its target, generation 1. */
  createWithRevision(projectId: string, name: string, fields: ServiceFields, rev: NewRevision): Promise<{ service: Service; revision: Revision }> {
    return this.prisma.client.$transaction(async (tx) => {
      const created = await tx.service.create({ data: { ...fields, projectId, name, generation: 1 } as Prisma.ServiceUncheckedCreateInput });
      const revision = await tx.revision.create({ data: { ...rev, config: rev.config as never, serviceId: created.id, number: 1 } });
      const service = await tx.service.update({ where: { id: created.id }, data: { activeRevisionId: revision.id } });
      return { service, revision };
    }, TX);
  }

  /**
   * Appends the next revision and makes it the service's target. The generation bump comes first so
   * the row lock serialises concurrent deploys of one service (numbers never collide).
   */
  appendRevision(serviceId: string, fields: Partial<ServiceFields>, rev: NewRevision): Promise<{ service: Service; revision: Revision }> {
    return this.prisma.client.$transaction(async (tx) => {
      await tx.service.update({ where: { id: serviceId }, data: { ...(fields as Prisma.ServiceUncheckedUpdateInput), generation: { increment: 1 } } });
      const last = await tx.revision.findFirst({ where: { serviceId }, orderBy: { number: 'desc' }, select: { number: true } });
      const revision = await tx.revision.create({
        data: { ...rev, config: rev.config as never, serviceId, number: (last?.number ?? 0) + 1 },
      });
      const service = await tx.service.update({ where: { id: serviceId }, data: { activeRevisionId: revision.id } });
      return { service, revision };
    }, TX);
  }

  /** A write that changes no revision (scaling, placement); still bumps the generation the scheduler plans against. */
  update(serviceId: string, fields: Partial<ServiceFields>): Promise<Service> {
    return this.prisma.client.service.update({
      where: { id: serviceId },
      data: { ...(fields as Prisma.ServiceUncheckedUpdateInput), generation: { increment: 1 } },
    });
  }

  markDeleted(serviceId: string, at: Date): Promise<Service> {
    return this.prisma.client.service.update({
      where: { id: serviceId },
      data: { deletedAt: at, desiredReplicas: 0, minScale: 0, generation: { increment: 1 } },
    });
  }

  async replicaCounts(serviceId: string): Promise<Record<string, number>> {
    const rows = await this.prisma.client.replica.groupBy({ by: ['state'], where: { serviceId }, _count: { _all: true } });
    return Object.fromEntries(rows.map((r) => [r.state, r._count._all]));
  }

  listReplicas(serviceId: string, page: PageArgs) {
    return this.prisma.client.replica.findMany({
      where: { serviceId },
      include: { node: { select: { name: true } }, revision: { select: { number: true } } },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      ...pageQuery(page),
    });
  }

  /** Replicas whose logs are worth reading: the newest `take` of the service. */
  recentReplicas(serviceId: string, take: number): Promise<Pick<Replica, 'id' | 'state'>[]> {
    return this.prisma.client.replica.findMany({
      where: { serviceId },
      select: { id: true, state: true },
      orderBy: { createdAt: 'desc' },
      take,
    });
  }
}
