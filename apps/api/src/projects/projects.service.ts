import { Inject, Injectable } from '@nestjs/common';
import { DomainError, ErrorCode } from '@berth/contracts';
import { ProjectRepository, TokenRepository, UserRepository } from '@berth/db';
import { AuditService } from '../common/audit/audit.service';
import { API_TOKEN_PREFIX, newOpaqueToken } from '../common/crypto/opaque-token';
import { assertId } from '../common/ids';
import { type PageRequest, toPage } from '../common/pagination/pagination';
import type { Actor } from '../auth/access.decorators';
import type { Principal, ProjectContext, RoleName } from '../auth/principal';
import { hashPassword } from '../auth/auth.service';
import { TokenCache } from '../auth/token-cache';
import { CLOCK, type Clock } from '../tokens';
import type { AddMemberInput, CreateProjectInput, CreateTokenInput } from './inputs/project.inputs';

const toRole = (r: string) => r.toUpperCase() as RoleName;

@Injectable()
export class ProjectsService {
  constructor(
    private readonly projects: ProjectRepository,
    private readonly users: UserRepository,
    private readonly tokens: TokenRepository,
    private readonly audit: AuditService,
    private readonly tokenCache: TokenCache,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {}

  async create(p: Principal, input: CreateProjectInput) {
    if (p.kind !== 'user') {
      throw new DomainError(ErrorCode.Forbidden, 'projects are created by users (log in); API tokens belong to one project');
    }
    if (await this.projects.findBySlug(input.slug)) throw new DomainError(ErrorCode.Conflict, `project '${input.slug}' already exists`, { field: 'slug' });
    const project = await this.projects.createWithOwner({ slug: input.slug, name: input.name ?? input.slug }, p.userId);
    await this.audit.record({ actor: p.actor, tokenId: null }, { projectId: project.id, type: 'project.created', message: `project ${project.slug} created` });
    return { ...projectOut(project), role: 'admin' };
  }

  async listMine(p: Principal, page: PageRequest) {
    if (p.kind === 'token') {
      const project = await this.projects.findById(p.projectId);
      return { items: project ? [{ ...projectOut(project), role: p.role.toLowerCase() }] : [], nextCursor: null };
    }
    const rows = await this.projects.listForUser(p.userId, { take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.id, (r) => ({ ...projectOut(r), role: r.role.toLowerCase() }));
  }

  // ------------------------------------------------------------ members

  async addMember(project: ProjectContext, actor: Actor, input: AddMemberInput) {
    const email = input.email.toLowerCase();
    let user = await this.users.findByEmail(email);
    if (!user) {
      if (!input.password) {
        throw new DomainError(ErrorCode.Validation, `password is required: no user with email ${email} exists yet`, { field: 'password' });
      }
      user = await this.users.create({ email, passwordHash: await hashPassword(input.password) });
    }
    const m = await this.users.upsertMembership(user.id, project.id, toRole(input.role));
    await this.audit.record(actor, {
      projectId: project.id,
      type: 'member.added',
      message: `${email} is now ${input.role} of ${project.slug}`,
      data: { userId: user.id, role: input.role },
    });
    return { userId: user.id, email, role: m.role.toLowerCase(), createdAt: m.createdAt };
  }

  async listMembers(project: ProjectContext, page: PageRequest) {
    const rows = await this.users.listMembers(project.id, { take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.userId, (r) => ({ userId: r.userId, email: r.user.email, role: r.role.toLowerCase(), createdAt: r.createdAt }));
  }

  async removeMember(project: ProjectContext, actor: Actor, userId: string) {
    assertId(userId, 'member');
    const m = await this.users.findMembership(userId, project.id);
    if (!m) throw new DomainError(ErrorCode.NotFound, `member '${userId}' not found`);
    if (m.role === 'ADMIN' && (await this.users.countAdmins(project.id)) <= 1) {
      throw new DomainError(ErrorCode.Conflict, 'cannot remove the last admin of the project');
    }
    await this.users.deleteMembership(userId, project.id);
    await this.audit.record(actor, { projectId: project.id, type: 'member.removed', message: `member ${userId} removed`, data: { userId } });
  }

  // ------------------------------------------------------------ tokens

  async createToken(project: ProjectContext, p: Principal, input: CreateTokenInput) {
    const t = newOpaqueToken(API_TOKEN_PREFIX);
    const expiresAt = input.expiresInDays ? new Date(this.clock().getTime() + input.expiresInDays * 86_400_000) : null;
    const row = await this.tokens.create({
      projectId: project.id,
      name: input.name,
      prefix: t.display,
      tokenHash: t.hash,
      role: toRole(input.role),
      createdById: p.kind === 'user' ? p.userId : null,
      expiresAt,
    });
    await this.audit.record(
      { actor: p.actor, tokenId: p.kind === 'token' ? p.tokenId : null },
      { projectId: project.id, type: 'token.created', message: `token ${input.name} (${input.role}) created`, data: { id: row.id, role: input.role } },
    );
    return { ...tokenOut(row), token: t.token };
  }

  async listTokens(project: ProjectContext, page: PageRequest) {
    const rows = await this.tokens.list(project.id, { take: page.limit + 1, afterId: page.after });
    return toPage(rows, page.limit, (r) => r.id, tokenOut);
  }

  async revokeToken(project: ProjectContext, actor: Actor, id: string) {
    assertId(id, 'token');
    const t = await this.tokens.findInProject(project.id, id);
    if (!t) throw new DomainError(ErrorCode.NotFound, `token '${id}' not found`);
    if (!t.revokedAt) {
      await this.tokens.revoke(project.id, id, this.clock());
      this.tokenCache.evictTokenId(id);
      await this.audit.record(actor, { projectId: project.id, type: 'token.revoked', message: `token ${t.name} revoked`, data: { id } });
    }
  }
}

export const projectOut = (p: { id: string; slug: string; name: string; operator: boolean; createdAt: Date }) => ({
  id: p.id,
  slug: p.slug,
  name: p.name,
  operator: p.operator,
  createdAt: p.createdAt,
});

const tokenOut = (t: {
  id: string;
  name: string;
  prefix: string;
  role: string;
  lastUsedAt: Date | null;
  expiresAt: Date | null;
  revokedAt: Date | null;
  createdAt: Date;
}) => ({
  id: t.id,
  name: t.name,
  prefix: t.prefix,
  role: t.role.toLowerCase(),
  lastUsedAt: t.lastUsedAt,
  expiresAt: t.expiresAt,
  revokedAt: t.revokedAt,
  createdAt: t.createdAt,
});
