import { Body, Controller, Get, HttpCode, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiOperation, ApiTags } from '@nestjs/swagger';
import { SecretResponse } from '../common/idempotency/secret-response';
import { Authenticated, CurrentPrincipal, Public } from './access.decorators';
import { LoginInput } from './inputs/login.input';
import { AuthService } from './auth.service';
import type { Principal } from './principal';

@ApiTags('auth')
@Controller('v1/auth')
export class AuthController {
  constructor(private readonly auth: AuthService) {}

  @Post('login')
  @Public()
  @HttpCode(200)
  @SecretResponse('accessToken')
  @ApiOperation({ summary: 'Exchange email + password for a short-lived JWT (dashboard use)' })
  login(@Body() body: LoginInput) {
    return this.auth.login(body.email, body.password);
  }

  @Get('whoami')
  @Authenticated()
  @ApiBearerAuth()
  @ApiOperation({ summary: 'Who the bearer token belongs to' })
  whoami(@CurrentPrincipal() p: Principal) {
    return p.kind === 'token'
      ? { kind: 'token', tokenId: p.tokenId, name: p.tokenName, project: p.projectSlug, role: p.role.toLowerCase() }
      : { kind: 'user', userId: p.userId, email: p.email };
  }
}
