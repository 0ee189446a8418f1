import { Injectable } from '@nestjs/common';
import { MapsPrismaErrors } from '../errors';
import { PrismaService } from '../prisma.service';
import type { ApiToken, Project, Role } from '../generated/prisma/client';
import { pageQuery, type PageArgs } from './project.repository';

export type ApiTokenWithProject = ApiToken & { project: Project };

@Injectable()
@MapsPrismaErrors('API token')
export class TokenRepository {
  constructor(private readonly prisma: PrismaService) {}

  create(data: {
    projectId: string;
    name: string;
    prefix: string;
    tokenHash: string;
    role: Role;
    createdById?: string | null;
    expiresAt?: Date | null;
  }): Promise<ApiToken> {
    return this.prisma.client.apiToken.create({ data });
  }

  findByHash(tokenHash: string): Promise<ApiTokenWithProject | null> {
    return this.prisma.client.apiToken.findUnique({ where: { tokenHash }, include: { project: true } });
  }

  findInProject(projectId: string, id: string): Promise<ApiToken | null> {
    return this.prisma.client.apiToken.findFirst({ where: { id, projectId } });
  }

  list(projectId: string, page: PageArgs): Promise<ApiToken[]> {
    return this.prisma.client.apiToken.findMany({
      where: { projectId },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      ...pageQuery(page),
    });
  }

  revoke(projectId: string, id: string, at: Date): Promise<{ count: number }> {
    return this.prisma.client.apiToken.updateMany({ where: { id, projectId, revokedAt: null }, data: { revokedAt: at } });
  }

  /** Records use at most once per `minIntervalMs` (a conditional update, so concurrent requests write once). */
  touch(id: string, now: Date, minIntervalMs: number): Promise<{ count: number }> {
    return this.prisma.client.apiToken.updateMany({
      where: { id, OR: [{ lastUsedAt: null }, { lastUsedAt: { lt: new Date(now.getTime() - minIntervalMs) } }] },
      data: { lastUsedAt: now },
    });
  }
}
