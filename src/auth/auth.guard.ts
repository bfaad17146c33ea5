import { type CanActivate, type ExecutionContext, ForbiddenException, Inject, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { type AuthenticatedRequest, IS_ADMIN_ONLY, IS_PUBLIC } from './auth.decorators';
import { InvalidTokenError, verifyAccessToken } from './jwt';

/** The token of an "Authorization: Bearer <token>" header, if the header has that form. */
export function readBearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer ([^\s]+)$/i.exec(header.trim());
  return match?.[1];
}

/** Global guard: every route needs a valid bearer token unless it is marked @Public(). */
@Injectable()
export class AuthGuard implements CanActivate {
  private readonly secret: string;

  constructor(
    private readonly reflector: Reflector,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'auth'>,
  ) {
    this.secret = config.auth.jwtSecret;
  }

  canActivate(context: ExecutionContext): boolean {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) return true;

    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const token = readBearerToken(request.headers.authorization);
    if (token === undefined) {
      throw new UnauthorizedException('Send an "Authorization: Bearer <token>" header');
    }
    try {
      request.caller = verifyAccessToken(token, this.secret);
    } catch (error) {
      if (error instanceof InvalidTokenError) throw new UnauthorizedException(`Invalid bearer token: ${error.message}`);
      throw error;
    }

    if (this.reflector.getAllAndOverride<boolean>(IS_ADMIN_ONLY, targets) && !request.caller.isAdmin) {
      throw new ForbiddenException('This operation needs the admin role');
    }
    return true;
  }
}
