import { type CallHandler, type ExecutionContext, Injectable, type NestInterceptor } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { from, lastValueFrom, map, type Observable } from 'rxjs';
import type { AuthenticatedRequest } from '../auth/auth.decorators';
import { RequestValidationError } from '../errors/request-validation';
import type { IdempotentWrite } from './idempotent-write';
import { type IdempotentRequest, IdempotencyService } from './idempotency.service';

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
export const REPLAYED_HEADER = 'Idempotent-Replayed';
const ACCEPTED_KEY = /^[\x21-\x7e]{1,255}$/;

export interface IdempotentHttpRequest extends AuthenticatedRequest {
  /** Set by IdempotencyInterceptor for the handler (CurrentIdempotentWrite). */
  idempotentWrite?: IdempotentWrite;
}

/**
 * Runs an @Idempotent() route under IdempotencyService when the request carries an
 * Idempotency-Key: derives the scope from the caller and the route template, hands the handler
 * its IdempotentWrite, and sends a replayed answer as it was first sent, marked by the
 * Idempotent-Replayed header. Without the header the route runs as it is.
 */
@Injectable()
export class IdempotencyInterceptor implements NestInterceptor {
  constructor(private readonly idempotency: IdempotencyService) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const http = context.switchToHttp();
    const request = http.getRequest<IdempotentHttpRequest>();
    const reply = http.getResponse<FastifyReply>();
    // Nest has set the route's success status (201 for POST, or its @HttpCode) before interceptors run.
    const idempotent = idempotentRequest(request, reply.statusCode);
    if (!idempotent) return next.handle();
    const outcome = this.idempotency.execute(idempotent, (write) => {
      request.idempotentWrite = write;
      return lastValueFrom(next.handle() as Observable<unknown>);
    });
    return from(outcome).pipe(
      map((answer) => {
        if (!answer.replayed) return answer.value;
        reply.code(answer.status);
        reply.header(REPLAYED_HEADER, 'true');
        return answer.body;
      }),
    );
  }
}

/**
 * Reads the optional Idempotency-Key header of a write. The key is scoped to the caller and to
 * the endpoint (method and route template); the hash covers the path parameters and the body.
 */
function idempotentRequest(request: IdempotentHttpRequest, successStatus: number): IdempotentRequest | undefined {
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
  if (!caller) throw new Error('@Idempotent() used on a route that AuthGuard did not authenticate');
  const endpoint = `${request.method} ${routeTemplate(request)}`;
  return {
    scope: { customerId: caller.customerId, endpoint, key },
    requestHash: IdempotencyService.hashRequest({ endpoint, params: request.params, body: request.body }),
    successStatus,
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
