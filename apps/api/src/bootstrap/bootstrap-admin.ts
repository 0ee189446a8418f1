import type { UserRepository } from '@berth/db';
import { hashPassword } from '../auth/auth.service';
import { API_TOKEN_PREFIX, newOpaqueToken } from '../common/crypto/opaque-token';

export interface BootstrapResult {
  project: string;
  email: string;
  /** The admin API token, shown once. */
  token: string;
}

/**
 * First run: when the database has no users, creates the operator project `default`, an admin
 * user and an admin API token. Does nothing (returns null) once any user exists, so it is safe to
 * run on every start and from several processes at once.
 */
export async function bootstrapAdmin(users: UserRepository, opts: { email: string; password: string }): Promise<BootstrapResult | null> {
  if ((await users.count()) > 0) return null;
  const email = opts.email.toLowerCase();
  const t = newOpaqueToken(API_TOKEN_PREFIX);
  const r = await users.bootstrap({
    project: { slug: 'default', name: 'Default' },
    user: { email, passwordHash: await hashPassword(opts.password), name: 'admin' },
    token: { name: 'bootstrap-admin', prefix: t.display, tokenHash: t.hash },
  });
  return r ? { project: r.project.slug, email, token: t.token } : null;
}
