import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { Strategy } from 'passport-http-bearer';
import { TokenRepository } from '@berth/db';
import { API_TOKEN_PREFIX, hashToken } from '../../common/crypto/opaque-token';
import { CLOCK, type Clock } from '../../tokens';
import type { Principal, RoleName } from '../principal';
import { TokenCache } from '../token-cache';

const TOUCH_INTERVAL_MS = 60_000;

/** `Authorization: Bearer brt_…`: a project-scoped API token, looked up by its sha256. */
@Injectable()
export class ApiTokenStrategy extends PassportStrategy(Strategy, 'api-token') {
  /** Last lastUsedAt write per token in this process, so a busy token costs no extra query. */
  private readonly touched = new Map<string, number>();

  constructor(
    private readonly tokens: TokenRepository,
    private readonly cache: TokenCache,
    @Inject(CLOCK) private readonly clock: Clock,
  ) {
    super();
  }

  async validate(token: string): Promise<Principal | false> {
    if (!token.startsWith(API_TOKEN_PREFIX) || token.length > 200) return false;
    const hash = hashToken(token);
    const now = this.clock();
    const cached = this.cache.get(hash, now.getTime());
    if (cached) {
      if (cached.kind === 'token') this.touch(cached.tokenId, now);
      return cached;
    }
    const t = await this.tokens.findByHash(hash);
    if (!t || t.revokedAt || (t.expiresAt && t.expiresAt <= now)) return false;
    this.touch(t.id, now);
    const principal: Principal = {
      kind: 'token',
      tokenId: t.id,
      tokenName: t.name,
      projectId: t.projectId,
      projectSlug: t.project.slug,
      operator: t.project.operator,
      role: t.role as RoleName,
      actor: `token:${t.name}`,
    };
    this.cache.set(hash, principal, now.getTime(), t.expiresAt);
    return principal;
  }

  private touch(id: string, now: Date): void {
    const last = this.touched.get(id);
    if (last !== undefined && now.getTime() - last < TOUCH_INTERVAL_MS) return;
    this.touched.set(id, now.getTime());
    if (this.touched.size > 50_000) this.touched.clear();
    // Throttled in the database too (conditional update), so several api processes write at most about once a minute.
    this.tokens.touch(id, now, TOUCH_INTERVAL_MS).catch(() => undefined);
  }
}
