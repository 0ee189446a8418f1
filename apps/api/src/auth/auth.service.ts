import { Inject, Injectable } from '@nestjs/common';
import { JwtService } from '@nestjs/jwt';
import * as argon2 from 'argon2';
import { DomainError, ErrorCode } from '@berth/contracts';
import { UserRepository } from '@berth/db';
import { API_CONFIG, type ApiConfig } from '../config';

export const JWT_SECRET = Symbol('JWT_SECRET');

// A valid hash to verify against when the email is unknown, so timing does not reveal which emails exist.
let dummyHash: Promise<string> | undefined;

export const hashPassword = (password: string) => argon2.hash(password, { type: argon2.argon2id });

@Injectable()
export class AuthService {
  constructor(
    private readonly users: UserRepository,
    private readonly jwt: JwtService,
    @Inject(API_CONFIG) private readonly config: ApiConfig,
  ) {}

  async login(email: string, password: string): Promise<{ accessToken: string; tokenType: 'Bearer'; expiresIn: number; user: { id: string; email: string } }> {
    const user = await this.users.findByEmail(email.toLowerCase());
    dummyHash ??= hashPassword('not-a-real-password');
    const ok = user ? await argon2.verify(user.passwordHash, password) : (await argon2.verify(await dummyHash, password), false);
    if (!user || !ok) throw new DomainError(ErrorCode.Unauthenticated, 'email or password is wrong');
    const expiresIn = this.config.BERTH_JWT_TTL_SECONDS;
    const accessToken = await this.jwt.signAsync({ sub: user.id }, { expiresIn, algorithm: 'HS256' });
    return { accessToken, tokenType: 'Bearer', expiresIn, user: { id: user.id, email: user.email } };
  }
}
