import { CanActivate, ExecutionContext, Inject, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { DomainError, ErrorCode } from '@berth/contracts';
import { NodeAdminRepository, ProjectRepository, UserRepository } from '@berth/db';
import { API_CONFIG, type ApiConfig } from '../../config';
import { hashToken, JOIN_TOKEN_PREFIX, NODE_CREDENTIAL_PREFIX } from '../../common/crypto/opaque-token';
import { TokenBucketLimiter } from '../../common/rate-limit/token-bucket';
import { CLOCK, type Clock } from '../../tokens';
import { ACCESS, type Access } from '../access.decorators';
import { principalKey, roleAtLeast, type AuthedRequest, type ProjectContext } from '../principal';
import { BearerOrJwtGuard } from './bearer-or-jwt.guard';

const SLUG_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * The single access decision for every route: authentication (API token or JWT), the per-principal
 * rate limit, the project the request acts on and the caller's role in it. A token of project A
 * asking for project B gets the same 404 as for a project that does not exist.
 */
@Injectable()
export class AccessGuard implements CanActivate {
  private readonly limiter: TokenBucketLimiter;

  constructor(
    private readonly reflector: Reflector,
    private readonly bearerOrJwt: BearerOrJwtGuard,
    private readonly projects: ProjectRepository,
    private readonly users: UserRepository,
    private readonly nodes: NodeAdminRepository,
    @Inject(API_CONFIG) config: ApiConfig,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    this.limiter = new TokenBucketLimiter(config.BERTH_API_RATE_LIMIT_RPS, config.BERTH_API_RATE_LIMIT_BURST);
  }

  async canActivate(ctx: ExecutionContext): Promise<boolean> {
    const access = this.reflector.getAllAndOverride<Access | undefined>(ACCESS, [ctx.getHandler(), ctx.getClass()]);
    if (!access) throw new DomainError(ErrorCode.Forbidden, 'this endpoint declares no access rule');
    if (access.kind === 'public') return true;
    const req = ctx.switchToHttp().getRequest<AuthedRequest>();
    if (access.kind === 'join-token' || access.kind === 'node') {
      await this.checkNode(req, access.kind === 'join-token');
      return true;
    }

    await this.bearerOrJwt.canActivate(ctx);
    const principal = req.user!;
    const limited = this.limiter.take(principalKey(principal));
    if (!limited.ok) {
      throw new DomainError(ErrorCode.RateLimited, `rate limit exceeded: retry in ${limited.retryAfterSeconds}s`, {
        retryAfterSeconds: limited.retryAfterSeconds,
      });
    }

    switch (access.kind) {
      case 'authenticated':
        return true;
      case 'operator': {
        const ok =
          principal.kind === 'token'
            ? principal.operator && principal.role === 'ADMIN'
            : await this.users.isOperatorAdmin(principal.userId);
        if (!ok) throw new DomainError(ErrorCode.Forbidden, 'managing the fleet needs the admin role in an operator project');
        return true;
      }
      case 'project': {
        req.project = await this.resolveProject(req);
        if (!roleAtLeast(req.project.role, access.role)) {
          throw new DomainError(
            ErrorCode.Forbidden,
            `role ${req.project.role.toLowerCase()} may not do this; it needs ${access.role.toLowerCase()} or higher`,
            { role: req.project.role.toLowerCase(), required: access.role.toLowerCase() },
          );
        }
        return true;
      }
    }
  }

  private async resolveProject(req: AuthedRequest): Promise<ProjectContext> {
    const principal = req.user!;
    const header = req.headers['x-berth-project'];
    const query = (req.query as Record<string, unknown>).project;
    const raw = typeof header === 'string' ? header : typeof query === 'string' ? query : undefined;
    if (raw !== undefined && !SLUG_RE.test(raw)) {
      throw new DomainError(ErrorCode.Validation, `project '${raw.slice(0, 80)}' is not a valid project slug`, { field: 'X-Berth-Project' });
    }
    if (principal.kind === 'token') {
      if (raw !== undefined && raw !== principal.projectSlug) throw notFoundProject(raw);
      return { id: principal.projectId, slug: principal.projectSlug, operator: principal.operator, role: principal.role };
    }
    if (raw === undefined) {
      throw new DomainError(ErrorCode.Validation, 'choose a project: send the X-Berth-Project header or ?project=<slug>', {
        field: 'X-Berth-Project',
      });
    }
    const project = await this.projects.findBySlug(raw);
    const membership = project ? await this.users.findMembership(principal.userId, project.id) : null;
    if (!project || !membership) throw notFoundProject(raw);
    return { id: project.id, slug: project.slug, operator: project.operator, role: membership.role };
  }

  /**
   * Agents: a node credential (bnc_…) always; a join token (bjt_…) only where joining is the point
   * (registration). Each refusal says what the operator does next.
   */
  private async checkNode(req: AuthedRequest, joinAllowed: boolean): Promise<void> {
    const m = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    const secret = m?.[1] ?? '';
    const now = this.clock();
    if (secret.startsWith(NODE_CREDENTIAL_PREFIX)) {
      const node = await this.nodes.findByCredentialHash(hashToken(secret));
      if (!node) throw new DomainError(ErrorCode.Unauthenticated, 'node credential is invalid (unknown, or replaced when the node joined again)');
      if (node.credentialRevokedAt) {
        throw new DomainError(
          ErrorCode.Unauthenticated,
          `the credential of node '${node.name}' was revoked at ${node.credentialRevokedAt.toISOString()}: re-join the node with a join token created after that (berth nodes tokens create --node ${node.name})`,
          { node: node.name, revokedAt: node.credentialRevokedAt.toISOString() },
        );
      }
      req.node = { kind: 'node', nodeId: node.id, nodeName: node.name };
      this.rateLimit(`node:${node.id}`);
      return;
    }
    if (!joinAllowed || !secret.startsWith(JOIN_TOKEN_PREFIX)) {
      throw new DomainError(
        ErrorCode.Unauthenticated,
        joinAllowed
          ? 'node registration needs Authorization: Bearer <join token bjt_…> or the node\'s credential (bnc_…)'
          : 'this endpoint needs the node\'s own credential: Authorization: Bearer <node credential bnc_…> (the agent gets it when it joins)',
      );
    }
    const t = await this.nodes.findJoinToken(hashToken(secret));
    if (!t) throw new DomainError(ErrorCode.Unauthenticated, 'join token is invalid: ask an operator admin for one (berth nodes tokens create)');
    if (t.revokedAt) throw new DomainError(ErrorCode.Unauthenticated, `join token ${t.prefix || t.id} was revoked at ${t.revokedAt.toISOString()}: ask an operator admin for a new one`);
    if (t.expiresAt && t.expiresAt <= now) {
      throw new DomainError(ErrorCode.Unauthenticated, `join token ${t.prefix || t.id} expired at ${t.expiresAt.toISOString()}: ask an operator admin for a new one (berth nodes tokens create --ttl …)`);
    }
    req.node = { kind: 'join', tokenId: t.id, nodeName: t.nodeName, createdAt: t.createdAt };
    this.rateLimit(`join:${t.id}`);
  }

  private rateLimit(key: string): void {
    const limited = this.limiter.take(key);
    if (!limited.ok) {
      throw new DomainError(ErrorCode.RateLimited, `rate limit exceeded: retry in ${limited.retryAfterSeconds}s`, {
        retryAfterSeconds: limited.retryAfterSeconds,
      });
    }
  }
}

const notFoundProject = (slug: string) => new DomainError(ErrorCode.NotFound, `project '${slug}' not found`);
