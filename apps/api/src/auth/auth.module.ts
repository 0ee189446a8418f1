import { Module } from '@nestjs/common';
import { APP_GUARD } from '@nestjs/core';
import { JwtModule } from '@nestjs/jwt';
import { PassportModule } from '@nestjs/passport';
import { deriveKey } from '../common/crypto/secret-key';
import { ProjectRepository, TokenRepository, UserRepository } from '@berth/db';
import { NodesModule } from '../nodes/nodes.module';
import { SECRET_KEY } from '../tokens';
import { AuthController } from './auth.controller';
import { AuthService, JWT_SECRET } from './auth.service';
import { AccessGuard } from './guards/access.guard';
import { BearerOrJwtGuard } from './guards/bearer-or-jwt.guard';
import { ApiTokenStrategy } from './strategies/api-token.strategy';
import { JwtStrategy } from './strategies/jwt.strategy';
import { TokenCache } from './token-cache';

const jwtSecret = (key: Buffer) => deriveKey(key, 'jwt');

/**
 * Who is calling: login (JWT), API tokens, node credentials, and the global AccessGuard that checks
 * every route's role. Owns the identity repositories (users, memberships, projects, tokens), which
 * the projects module manages through its exports.
 */
@Module({
  imports: [
    PassportModule,
    JwtModule.registerAsync({
      inject: [SECRET_KEY],
      useFactory: (key: Buffer) => ({ secret: jwtSecret(key), signOptions: { algorithm: 'HS256' } }),
    }),
    // The guard authenticates agents by their per-node credential.
    NodesModule,
  ],
  controllers: [AuthController],
  providers: [
    { provide: JWT_SECRET, inject: [SECRET_KEY], useFactory: jwtSecret },
    UserRepository,
    TokenRepository,
    ProjectRepository,
    AuthService,
    TokenCache,
    ApiTokenStrategy,
    JwtStrategy,
    BearerOrJwtGuard,
    { provide: APP_GUARD, useClass: AccessGuard },
  ],
  exports: [UserRepository, TokenRepository, ProjectRepository, TokenCache],
})
export class AuthModule {}
