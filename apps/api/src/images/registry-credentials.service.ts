import { Inject, Injectable } from '@nestjs/common';
import { DomainError, ErrorCode } from '@berth/contracts';
import { parseReference, type RegistryCredentials } from '@berth/oci';
import { RegistryCredentialRepository } from '@berth/db';
import type { Actor } from '../auth/access.decorators';
import type { ProjectContext } from '../auth/principal';
import { AuditService } from '../common/audit/audit.service';
import { open, seal } from '../common/crypto/secret-box';
import { type PageRequest, toPage } from '../common/pagination/pagination';
import { SECRET_KEY } from '../tokens';

/** Registry host as references name it ("docker.io" for Docker Hub, "127.0.0.1:5000"). */
export function normaliseRegistry(input: string): string {
  try {
    const r = parseReference(`${input}/x`);
    if (r.repository !== 'x' && r.repository !== 'library/x') throw new Error();
    return r.registry;
  } catch {
    throw new DomainError(ErrorCode.Validation, `registry '${input.slice(0, 100)}' is not a registry host[:port]`, { field: 'registry' });
  }
}

/** Per-project registry credentials, sealed with AES-256-GCM; the AAD binds each secret to its project and registry. */
@Injectable()
export class RegistryCredentialsService {
  constructor(
    private readonly repo: RegistryCredentialRepository,
    private readonly audit: AuditService,
    @Inject(SECRET_KEY) private readonly key: Buffer,
  ) {}

  async put(project: ProjectContext, actor: Actor, registryInput: string, username: string, password: string) {
    const registry = normaliseRegistry(registryInput);
    const row = await this.repo.upsert(project.id, registry, username, seal(this.key, password, `${project.id}/${registry}`));
    await this.audit.record(actor, {
      projectId: project.id,
      type: 'registry_credential.set',
      message: `credentials for ${registry} set (user ${username})`,
      data: { registry, username },
    });
    return credentialOut(row);
  }

  async list(project: ProjectContext, page: PageRequest) {
    const rows = await this.repo.list(project.id, { take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.id, credentialOut);
  }

  async delete(project: ProjectContext, actor: Actor, registryInput: string) {
    const registry = normaliseRegistry(registryInput);
    const r = await this.repo.delete(project.id, registry);
    if (r.count === 0) throw new DomainError(ErrorCode.NotFound, `no credentials for registry '${registry}'`);
    await this.audit.record(actor, { projectId: project.id, type: 'registry_credential.deleted', message: `credentials for ${registry} deleted`, data: { registry } });
  }

  /** For the registry client: the decrypted credentials of `projectId` for `registry`, if any. */
  async lookup(projectId: string, registry: string): Promise<RegistryCredentials | undefined> {
    const row = await this.repo.find(projectId, registry);
    if (!row) return undefined;
    return { username: row.username, password: open(this.key, row.secret, `${projectId}/${registry}`) };
  }
}

const credentialOut = (r: { id: string; registry: string; username: string; createdAt: Date; updatedAt: Date }) => ({
  id: r.id,
  registry: r.registry,
  username: r.username,
  createdAt: r.createdAt,
  updatedAt: r.updatedAt,
});
