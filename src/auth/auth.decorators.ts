import { createParamDecorator, type ExecutionContext, SetMetadata } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import type { Caller } from './caller';

export const IS_PUBLIC = 'auth:public';
export const IS_ADMIN_ONLY = 'auth:admin-only';

/** The route needs no token (health checks, API docs). */
export const Public = () => SetMetadata(IS_PUBLIC, true);

/** The route needs a token whose roles include "admin". */
export const AdminOnly = () => SetMetadata(IS_ADMIN_ONLY, true);

export interface AuthenticatedRequest extends FastifyRequest {
  caller?: Caller;
}

/** The caller that AuthGuard read from the bearer token. */
export const CurrentCaller = createParamDecorator((_data: unknown, context: ExecutionContext): Caller => {
  const caller = context.switchToHttp().getRequest<AuthenticatedRequest>().caller;
  if (!caller) throw new Error('CurrentCaller used on a route that AuthGuard did not authenticate');
  return caller;
});
