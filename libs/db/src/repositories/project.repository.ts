import { Injectable } from '@nestjs/common';
import { MapsPrismaErrors } from '../errors';
import { PrismaService } from '../prisma.service';
import type { Project, Role } from '../generated/prisma/client';

/** Keyset page request shared by the list methods of the api repositories: `take` rows after the row `afterId`. */
export interface PageArgs {
  take: number;
  afterId?: string;
}

export const pageQuery = (p: PageArgs) => ({ take: p.take, ...(p.afterId ? { cursor: { id: p.afterId }, skip: 1 } : {}) });

@Injectable()
@MapsPrismaErrors('project')
export class ProjectRepository {
  constructor(private readonly prisma: PrismaService) {}

  findBySlug(slug: string): Promise<Project | null> {
    return this.prisma.client.project.findUnique({ where: { slug } });
  }

  findById(id: string): Promise<Project | null> {
    return this.prisma.client.project.findUnique({ where: { id } });
  }

  /** Creates the project and makes `ownerId` its admin, atomically. */
  createWithOwner(data: { slug: string; name: string; operator?: boolean }, ownerId: string): Promise<Project> {
    return this.prisma.client.project.create({
      data: { ...data, memberships: { create: { userId: ownerId, role: 'ADMIN' } } },
    });
  }

  /** Projects the user is a member of, with their role, newest first. */
  async listForUser(userId: string, page: PageArgs): Promise<(Project & { role: Role })[]> {
    const rows = await this.prisma.client.membership.findMany({
      where: { userId },
      include: { project: true },
      orderBy: [{ createdAt: 'desc' }, { projectId: 'desc' }],
      take: page.take,
      ...(page.afterId ? { cursor: { userId_projectId: { userId, projectId: page.afterId } }, skip: 1 } : {}),
    });
    return rows.map((m) => ({ ...m.project, role: m.role }));
  }
}
