import { Injectable } from '@nestjs/common';
import { MapsPrismaErrors } from '../errors';
import { PrismaService } from '../prisma.service';
import type { Membership, Project, Role, User } from '../generated/prisma/client';
import type { PageArgs } from './project.repository';

@Injectable()
@MapsPrismaErrors('user')
export class UserRepository {
  constructor(private readonly prisma: PrismaService) {}

  count(): Promise<number> {
    return this.prisma.client.user.count();
  }

  findByEmail(email: string): Promise<User | null> {
    return this.prisma.client.user.findUnique({ where: { email } });
  }

  findById(id: string): Promise<User | null> {
    return this.prisma.client.user.findUnique({ where: { id } });
  }

  create(data: { email: string; passwordHash: string; name?: string | null }): Promise<User> {
    return this.prisma.client.user.create({ data });
  }

  findMembership(userId: string, projectId: string): Promise<Membership | null> {
    return this.prisma.client.membership.findUnique({ where: { userId_projectId: { userId, projectId } } });
  }

  /** True when the user is an admin of at least one operator project (fleet management). */
  async isOperatorAdmin(userId: string): Promise<boolean> {
    const n = await this.prisma.client.membership.count({ where: { userId, role: 'ADMIN', project: { operator: true } } });
    return n > 0;
  }

  upsertMembership(userId: string, projectId: string, role: Role): Promise<Membership> {
    return this.prisma.client.membership.upsert({
      where: { userId_projectId: { userId, projectId } },
      create: { userId, projectId, role },
      update: { role },
    });
  }

  deleteMembership(userId: string, projectId: string): Promise<{ count: number }> {
    return this.prisma.client.membership.deleteMany({ where: { userId, projectId } });
  }

  countAdmins(projectId: string): Promise<number> {
    return this.prisma.client.membership.count({ where: { projectId, role: 'ADMIN' } });
  }

  async listMembers(projectId: string, page: PageArgs): Promise<(Membership & { user: User })[]> {
    return this.prisma.client.membership.findMany({
      where: { projectId },
      include: { user: true },
      orderBy: [{ createdAt: 'desc' }, { userId: 'desc' }],
      take: page.take,
      ...(page.afterId ? { cursor: { userId_projectId: { userId: page.afterId, projectId } }, skip: 1 } : {}),
    });
  }

  /** First-run set-up: operator project, admin user, membership and admin token in one transaction. */
  async bootstrap(data: {
    project: { slug: string; name: string };
    user: { email: string; passwordHash: string; name?: string };
    token: { name: string; prefix: string; tokenHash: string };
  }): Promise<{ project: Project; user: User } | null> {
    return this.prisma.client.$transaction(async (tx) => {
      // Serialise concurrent first starts: only one of them creates the admin.
      await tx.$executeRaw`select pg_advisory_xact_lock(7268001)`;
      if ((await tx.user.count()) > 0) return null;
      const project = await tx.project.upsert({
        where: { slug: data.project.slug },
        create: { ...data.project, operator: true },
        update: { operator: true },
      });
      const user = await tx.user.create({ data: data.user });
      await tx.membership.create({ data: { userId: user.id, projectId: project.id, role: 'ADMIN' } });
      await tx.apiToken.create({ data: { ...data.token, projectId: project.id, role: 'ADMIN', createdById: user.id } });
      await tx.event.create({
        data: {
          projectId: project.id,
          type: 'project.bootstrapped',
          message: `bootstrap created project ${project.slug} and admin ${user.email}`,
          actor: 'system',
        },
      });
      return { project, user };
    });
  }
}
