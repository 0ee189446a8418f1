import { createParamDecorator, ExecutionContext, SetMetadata } from '@nestjs/common';
import type { AuthedRequest, NodeCaller, Principal, ProjectContext, RoleName } from './principal';

/**
 * Every route declares its access; the AccessGuard refuses routes that declare none (fail closed).
 *   @Public()           no authentication (login, ops endpoints, docs)
 *   @Authenticated()    any valid principal, no project (list my projects, nodes summary)
 *   @ProjectRole(r)     a project is resolved and the caller's role in it must be at least r
 *   @OperatorAdmin()    admin of an operator project (fleet management)
 *   @JoinToken()        an agent joining or returning: a node join token (bjt_…) or a node credential (bnc_…)
 *   @NodeCredential()   an agent, by its own node credential (bnc_…) only
 */
export type Access =
  | { kind: 'public' }
  | { kind: 'authenticated' }
  | { kind: 'project'; role: RoleName }
  | { kind: 'operator' }
  | { kind: 'join-token' }
  | { kind: 'node' };

export const ACCESS = 'berth:access';
export const Public = () => SetMetadata(ACCESS, { kind: 'public' } satisfies Access);
export const Authenticated = () => SetMetadata(ACCESS, { kind: 'authenticated' } satisfies Access);
export const ProjectRole = (role: 'viewer' | 'deployer' | 'admin') =>
  SetMetadata(ACCESS, { kind: 'project', role: role.toUpperCase() as RoleName } satisfies Access);
export const OperatorAdmin = () => SetMetadata(ACCESS, { kind: 'operator' } satisfies Access);
export const JoinToken = () => SetMetadata(ACCESS, { kind: 'join-token' } satisfies Access);
export const NodeCredential = () => SetMetadata(ACCESS, { kind: 'node' } satisfies Access);

export const CurrentPrincipal = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  return ctx.switchToHttp().getRequest<AuthedRequest>().user!;
});
export const CurrentProject = createParamDecorator((_: unknown, ctx: ExecutionContext): ProjectContext => {
  return ctx.switchToHttp().getRequest<AuthedRequest>().project!;
});

export const CurrentNode = createParamDecorator((_: unknown, ctx: ExecutionContext): NodeCaller => {
  return ctx.switchToHttp().getRequest<AuthedRequest>().node!;
});

/** Actor stamp for audit events and revisions. */
export interface Actor {
  actor: string;
  tokenId: string | null;
}
export const CurrentActor = createParamDecorator((_: unknown, ctx: ExecutionContext): Actor => {
  const p = ctx.switchToHttp().getRequest<AuthedRequest>().user!;
  return { actor: p.actor, tokenId: p.kind === 'token' ? p.tokenId : null };
});
