import type { Request } from 'express';

export type RoleName = 'ADMIN' | 'DEPLOYER' | 'VIEWER';
const RANK: Record<RoleName, number> = { VIEWER: 1, DEPLOYER: 2, ADMIN: 3 };
export const roleAtLeast = (have: RoleName, need: RoleName) => RANK[have] >= RANK[need];

/** Who is calling: an API token (scoped to one project) or a logged-in user (JWT). */
export type Principal =
  | {
      kind: 'token';
      tokenId: string;
      tokenName: string;
      projectId: string;
      projectSlug: string;
      operator: boolean;
      role: RoleName;
      actor: string;
    }
  | { kind: 'user'; userId: string; email: string; actor: string };

/** The project a request acts on, with the caller's role in it. */
export interface ProjectContext {
  id: string;
  slug: string;
  operator: boolean;
  role: RoleName;
}

/**
 * An agent calling: with a join token (`bjt_…`, joining; `nodeName` set when the token is bound to
 * one node) or with its own per-node credential (`bnc_…`, handed out at join).
 */
export type NodeCaller =
  | { kind: 'join'; tokenId: string; nodeName: string | null; createdAt: Date }
  | { kind: 'node'; nodeId: string; nodeName: string };

export interface AuthedRequest extends Request {
  user?: Principal;
  project?: ProjectContext;
  node?: NodeCaller;
}

export const principalKey = (p: Principal) => (p.kind === 'token' ? `token:${p.tokenId}` : `user:${p.userId}`);
export const tokenIdOf = (p: Principal) => (p.kind === 'token' ? p.tokenId : null);
