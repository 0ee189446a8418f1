import { Injectable } from '@nestjs/common';
import type { Principal } from './principal';

/** How long a validated API token is trusted without a database read. Revocation in this process is immediate. */
export const TOKEN_CACHE_TTL_MS = 5_000;

/**
 * Validated API tokens by hash, for a few seconds: a busy CI token costs one lookup per 5 s
 * instead of one per request. A revoke through this process evicts at once; another api process
 * notices within TOKEN_CACHE_TTL_MS.
 */
@Injectable()
export class TokenCache {
  private readonly byHash = new Map<string, { principal: Principal; until: number }>();

  get(hash: string, now: number): Principal | undefined {
    const e = this.byHash.get(hash);
    if (!e) return undefined;
    if (e.until <= now) {
      this.byHash.delete(hash);
      return undefined;
    }
    return e.principal;
  }

  set(hash: string, principal: Principal, now: number, expiresAt: Date | null): void {
    if (this.byHash.size >= 10_000) this.byHash.clear();
    const until = Math.min(now + TOKEN_CACHE_TTL_MS, expiresAt ? expiresAt.getTime() : Infinity);
    this.byHash.set(hash, { principal, until });
  }

  evictTokenId(tokenId: string): void {
    for (const [hash, e] of this.byHash) if (e.principal.kind === 'token' && e.principal.tokenId === tokenId) this.byHash.delete(hash);
  }
}
