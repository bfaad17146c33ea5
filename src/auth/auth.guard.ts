import { type CanActivate, type ExecutionContext, ForbiddenException, Injectable, UnauthorizedException } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { type AuthenticatedRequest, IS_ADMIN_ONLY, IS_PUBLIC } from './auth.decorators';
import { InvalidTokenError } from './auth-errors';
import { Authenticator } from './authenticator';

/** Global guard: every route needs a valid bearer token unless it is marked @Public(). */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly authenticator: Authenticator,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(IS_PUBLIC, targets)) return true;

    const request = context.switchToHttp().getRequest<AuthenticatedRequest>();
    try {
      request.caller = await this.authenticator.callerOf(request);
    } catch (error) {
      // ProblemDetailsFilter answers 401 with WWW-Authenticate; IdentityProviderUnavailableError goes on as 503.
      if (error instanceof InvalidTokenError) throw new UnauthorizedException(error.message);
      throw error;
    }

    if (this.reflector.getAllAndOverride<boolean>(IS_ADMIN_ONLY, targets) && !request.caller.isAdmin) {
      throw new ForbiddenException('This operation needs the admin role');
    }
    return true;
  }
}
