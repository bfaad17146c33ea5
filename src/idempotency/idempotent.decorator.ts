import { applyDecorators, createParamDecorator, type ExecutionContext, UseInterceptors } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { IdempotentWrite } from './idempotent-write';
import { IdempotencyInterceptor, type IdempotentHttpRequest } from './idempotency.interceptor';

/**
 * Makes a write route idempotent under the Idempotency-Key header: the key is scoped to the
 * caller and the route template, the first success is recorded in the write's transaction and
 * replayed to retries (idempotency.interceptor.ts). The handler takes @CurrentIdempotentWrite()
 * and passes it to the service; the success status is the route's (201 for POST, or @HttpCode).
 */
export const Idempotent = () =>
  applyDecorators(
    UseInterceptors(IdempotencyInterceptor),
    ApiHeader({
      name: 'Idempotency-Key',
      required: false,
      description:
        'Makes the write safe to retry: the same key with the same request replays the first success (header Idempotent-Replayed: true) ' +
        'for IDEMPOTENCY_KEY_TTL_MS (default 24 h); with a different request 422; while the first is still running 409 with Retry-After. ' +
        'Scoped to the caller and the endpoint.',
    }),
  );

/** The IdempotentWrite of a request that carries an Idempotency-Key, on an @Idempotent() route; undefined without a key. */
export const CurrentIdempotentWrite = createParamDecorator(
  (_data: unknown, context: ExecutionContext): IdempotentWrite | undefined => context.switchToHttp().getRequest<IdempotentHttpRequest>().idempotentWrite,
);
