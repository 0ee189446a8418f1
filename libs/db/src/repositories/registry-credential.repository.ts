import { Injectable } from '@nestjs/common';
import { MapsPrismaErrors } from '../errors';
import { PrismaService } from '../prisma.service';
import type { RegistryCredential } from '../generated/prisma/client';
import { pageQuery, type PageArgs } from './project.repository';

@Injectable()
@MapsPrismaErrors('registry credential')
export class RegistryCredentialRepository {
  constructor(private readonly prisma: PrismaService) {}

  upsert(projectId: string, registry: string, username: string, secret: Buffer): Promise<RegistryCredential> {
    const bytes = new Uint8Array(secret);
    return this.prisma.client.registryCredential.upsert({
      where: { projectId_registry: { projectId, registry } },
      create: { projectId, registry, username, secret: bytes },
      update: { username, secret: bytes },
    });
  }

  find(projectId: string, registry: string): Promise<RegistryCredential | null> {
    return this.prisma.client.registryCredential.findUnique({ where: { projectId_registry: { projectId, registry } } });
  }

  list(projectId: string, page: PageArgs): Promise<RegistryCredential[]> {
    return this.prisma.client.registryCredential.findMany({
      where: { projectId },
      orderBy: [{ createdAt: 'desc' }, { id: 'desc' }],
      ...pageQuery(page),
    });
  }

  delete(projectId: string, registry: string): Promise<{ count: number }> {
    return this.prisma.client.registryCredential.deleteMany({ where: { projectId, registry } });
  }
}
