import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ApiHeader } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { AuthenticatedRequest } from '../auth/auth.decorators';
import { RequestValidationError } from '../errors/request-validation';
import { type IdempotentRequest, IdempotencyService } from './idempotency.service';

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
export const REPLAYED_HEADER = 'Idempotent-Replayed';
const ACCEPTED_KEY = /^[\x21-\x7e]{1,255}$/;

/** What IdempotencyService.run needs of a request that carries an Idempotency-Key. */
export interface IdempotencyKeyed {
  request: IdempotentRequest;
  /** Marks the answer as a replay of the stored one, with its status. */
  replayed(status: number): void;
}

/**
 * The Idempotency-Key of a write route's request, for IdempotencyService.run; undefined when the
 * request has none. The key is scoped to the caller and to the endpoint (method and route
 * template); the request hash covers the path parameters and the body. Also documents the header
 * in OpenAPI. A route opts in by taking this parameter and running its write through run():
 *
 *   book(@CurrentCaller() caller, ..., @IdempotencyKey() key: IdempotencyKeyed | undefined) {
 *     return this.idempotency.run(key, (write) => this.bookings.book(caller, ..., write));
 *   }
 *
 * A parameter rather than an interceptor: Nest runs every route that has an interceptor through
 * an rxjs pipeline, a sixth of the bytes a booking allocated when no request carried a key.
 */
export const IdempotencyKey = createParamDecorator(
  (_data: unknown, context: ExecutionContext): IdempotencyKeyed | undefined => {
    const http = context.switchToHttp();
    return idempotencyKeyed(http.getRequest<AuthenticatedRequest>(), http.getResponse<FastifyReply>());
  },
  [
    (target, method) => {
      if (method === undefined) throw new Error('@IdempotencyKey() is for route handler parameters');
      const handler = Object.getOwnPropertyDescriptor(target, method);
      if (!handler) throw new Error(`@IdempotencyKey(): no method ${String(method)}`);
      ApiHeader({
        name: IDEMPOTENCY_KEY_HEADER,
        required: false,
        description:
          'Makes the write safe to retry: the same key with the same request replays the first success (header Idempotent-Replayed: true) ' +
          'for IDEMPOTENCY_KEY_TTL_MS (default 24 h); with a different request 422; while the first is still running 409 with Retry-After. ' +
          'Scoped to the caller and the endpoint.',
      })(target, method, handler);
    },
  ],
);

function idempotencyKeyed(request: AuthenticatedRequest, reply: FastifyReply): IdempotencyKeyed | undefined {
  const header = request.headers[IDEMPOTENCY_KEY_HEADER.toLowerCase()];
  if (header === undefined) return undefined;
  // A structured-field string ("key") or a bare token are both accepted.
  const key = (Array.isArray(header) ? header.join(',') : header).trim().replace(/^"(.*)"$/, '$1');
  if (!ACCEPTED_KEY.test(key)) {
    throw new RequestValidationError([
      { field: IDEMPOTENCY_KEY_HEADER, message: `${IDEMPOTENCY_KEY_HEADER} must be 1 to 255 visible ASCII characters` },
    ]);
  }
  const caller = request.caller;
  if (!caller) throw new Error('@IdempotencyKey() used on a route that AuthGuard did not authenticate');
  const endpoint = `${request.method} ${routeTemplate(request)}`;
  return {
    request: {
      scope: { customerId: caller.customerId, endpoint, key },
      requestHash: IdempotencyService.hashRequest({ endpoint, params: request.params, body: request.body }),
      // Nest has set the route's success status (201 for POST, or its @HttpCode) before it reads parameters.
      successStatus: reply.statusCode,
    },
    replayed: (status) => {
      reply.code(status);
      reply.header(REPLAYED_HEADER, 'true');
    },
  };
}

/**
 * The template the request was routed by, e.g. /api/v1/matches/:id/bookings. Stored in the
 * keys' scope: Fastify's route url has the form Express's route path had (`:name` parameters,
 * the prefix included), so keys stored under Express still match.
 */
function routeTemplate(request: FastifyRequest): string {
  const path = request.routeOptions.url;
  if (typeof path !== 'string') throw new Error(`No route template for ${request.method} ${request.originalUrl}`);
  return path;
}
