import { Inject, Injectable } from '@nestjs/common';
import { PassportStrategy } from '@nestjs/passport';
import { ExtractJwt, Strategy } from 'passport-jwt';
import { UserRepository } from '@berth/db';
import { JWT_SECRET } from '../auth.service';
import type { Principal } from '../principal';

/** `Authorization: Bearer <jwt>` from POST /v1/auth/login: a user; the project comes per request. */
@Injectable()
export class JwtStrategy extends PassportStrategy(Strategy, 'jwt') {
  constructor(
    private readonly users: UserRepository,
    @Inject(JWT_SECRET) secret: Buffer,
  ) {
    super({ jwtFromRequest: ExtractJwt.fromAuthHeaderAsBearerToken(), secretOrKey: secret, algorithms: ['HS256'], ignoreExpiration: false });
  }

  async validate(payload: { sub?: unknown }): Promise<Principal | false> {
    if (typeof payload.sub !== 'string' || !/^[0-9a-f-]{36}$/.test(payload.sub)) return false;
    const user = await this.users.findById(payload.sub);
    if (!user) return false;
    return { kind: 'user', userId: user.id, email: user.email, actor: `user:${user.email}` };
  }
}
