import { ExecutionContext, Injectable } from '@nestjs/common';
import { AuthGuard } from '@nestjs/passport';
import { DomainError, ErrorCode } from '@berth/contracts';
import { API_TOKEN_PREFIX } from '../../common/crypto/opaque-token';

/** Tries the API token strategy, then the JWT one; a request passing neither is a 401 saying why. */
@Injectable()
export class BearerOrJwtGuard extends AuthGuard(['api-token', 'jwt']) {
  override handleRequest<T>(err: unknown, user: T, _info: unknown, context: ExecutionContext): T {
    if (err) throw err;
    if (user) return user;
    const header = context.switchToHttp().getRequest<{ headers: Record<string, string | undefined> }>().headers.authorization;
    if (!header) throw new DomainError(ErrorCode.Unauthenticated, 'authentication required: send Authorization: Bearer <API token or login token>');
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) throw new DomainError(ErrorCode.Unauthenticated, 'Authorization header must be "Bearer <token>"');
    if (m[1]!.startsWith(API_TOKEN_PREFIX)) throw new DomainError(ErrorCode.Unauthenticated, 'API token is invalid, revoked or expired');
    throw new DomainError(ErrorCode.Unauthenticated, 'login token is invalid or expired: log in again');
  }
}
