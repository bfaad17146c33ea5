import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { Request, Response } from 'express';
import { translateDatabaseError } from '../database/database-errors';
import {
  BookingNotConfirmedError,
  BookingNotFoundError,
  CapacityBelowBookedError,
  ConcurrencyConflictError,
  DatabaseUnavailableError,
  OutcomeUnknownError,
  HoldExpiredError,
  HoldNotActiveError,
  HoldNotFoundError,
  IdempotencyInFlightError,
  IdempotencyKeyReusedError,
  InsufficientSlotsError,
  InvalidInputError,
  LockTimeoutError,
  MatchNotFoundError,
} from './domain-errors';
import { type ProblemDetails, problemTypeUri, sendProblem } from './problem';
import { RequestValidationError } from './request-validation';
import { RateLimitedError } from '../rate-limit/rate-limited.error';

interface Mapped {
  problem: ProblemDetails;
  headers?: Record<string, string>;
}

/**
 * The one place where errors become HTTP answers: RFC 9457 problem+json for every error.
 * Unexpected errors are logged with their stack and answered with a generic 500 that reveals
 * no SQL, stack or internal message.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger(ProblemDetailsFilter.name);

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<Request>();
    const response = http.getResponse<Response>();
    const mapped = this.map(translateDatabaseError(exception), request);
    if (mapped.problem.status >= 500) {
      this.logger.error(
        `${request.method} ${request.originalUrl} failed with ${mapped.problem.status}: ${describe(exception)}`,
        exception instanceof Error ? exception.stack : undefined,
      );
    }
    if (response.headersSent) {
      // Nothing sensible can be sent any more; end the exchange so the client does not hang.
      response.end();
      return;
    }
    // The request id (X-Request-Id) ties the answer to the log lines of the request.
    const requestId = (request as Request & { id?: unknown }).id;
    sendProblem(
      response,
      { ...mapped.problem, instance: request.originalUrl, ...(typeof requestId === 'string' && { requestId }) },
      mapped.headers,
    );
  }

  private map(error: unknown, request: Request): Mapped {
    if (error instanceof InsufficientSlotsError) {
      return problem(HttpStatus.CONFLICT, 'insufficient-slots', 'Not enough slots left', error.message, {
        matchId: error.matchId,
        requestedSlots: error.requestedSlots,
        availableSlots: error.availableSlots,
      });
    }
    if (error instanceof CapacityBelowBookedError) {
      return problem(HttpStatus.CONFLICT, 'capacity-below-booked', 'Capacity below booked slots', error.message, {
        matchId: error.matchId,
        requestedCapacity: error.requestedCapacity,
        bookedSlots: error.bookedSlots,
        heldSlots: error.heldSlots,
      });
    }
    if (error instanceof IdempotencyInFlightError) {
      return {
        ...problem(HttpStatus.CONFLICT, 'idempotency-in-flight', 'Request in progress', error.message, { retryAfterSeconds: 1 }),
        headers: { 'Retry-After': '1' },
      };
    }
    if (error instanceof IdempotencyKeyReusedError) {
      return problem(HttpStatus.UNPROCESSABLE_ENTITY, 'idempotency-key-reused', 'Idempotency-Key reused', error.message);
    }
    if (error instanceof HoldNotFoundError) {
      return problem(HttpStatus.NOT_FOUND, 'hold-not-found', 'Hold not found', error.message, { holdId: error.holdId });
    }
    if (error instanceof HoldExpiredError) {
      return problem(HttpStatus.GONE, 'hold-expired', 'Hold expired', error.message, { holdId: error.holdId });
    }
    if (error instanceof HoldNotActiveError) {
      return problem(HttpStatus.CONFLICT, 'hold-not-active', 'Hold not active', error.message, {
        holdId: error.holdId,
        holdStatus: error.holdStatus,
        bookingId: error.bookingId,
      });
    }
    if (error instanceof BookingNotConfirmedError) {
      return problem(HttpStatus.CONFLICT, 'booking-not-confirmed', 'Booking not confirmed', error.message, {
        bookingId: error.bookingId,
      });
    }
    if (error instanceof MatchNotFoundError) {
      return problem(HttpStatus.NOT_FOUND, 'match-not-found', 'Match not found', error.message, { matchId: error.matchId });
    }
    if (error instanceof BookingNotFoundError) {
      return problem(HttpStatus.NOT_FOUND, 'booking-not-found', 'Booking not found', error.message, {
        bookingId: error.bookingId,
      });
    }
    if (error instanceof InvalidInputError) {
      return problem(HttpStatus.BAD_REQUEST, 'validation-failed', 'Invalid request', error.message, {
        errors: [{ field: error.field, message: error.message }],
      });
    }
    if (error instanceof RequestValidationError) {
      return problem(HttpStatus.BAD_REQUEST, 'validation-failed', 'Invalid request', error.message, { errors: error.errors });
    }
    if (error instanceof RateLimitedError) {
      return {
        ...problem(HttpStatus.TOO_MANY_REQUESTS, 'rate-limited', 'Too many requests', error.message, {
          limit: error.limit,
          retryAfterSeconds: error.retryAfterSeconds,
        }),
        headers: { 'Retry-After': String(error.retryAfterSeconds) },
      };
    }
    if (error instanceof LockTimeoutError) {
      return retryLater('lock-timeout', 'Match is busy', 'The match is being booked by many customers at once; retry shortly', 1);
    }
    if (error instanceof ConcurrencyConflictError) {
      return retryLater('concurrency-conflict', 'Concurrent update', 'The request conflicted with a concurrent one; retry shortly', 1);
    }
    if (error instanceof OutcomeUnknownError) {
      return {
        ...problem(HttpStatus.SERVICE_UNAVAILABLE, 'outcome-unknown', 'Outcome unknown', error.message, {
          [`${error.resource}Id`]: error.id,
          retryAfterSeconds: 2,
        }),
        headers: { 'Retry-After': '2' },
      };
    }
    if (error instanceof DatabaseUnavailableError) {
      return retryLater('database-unavailable', 'Service unavailable', 'The database is unavailable or overloaded; retry shortly', 2);
    }
    if (error instanceof HttpException && isHealthCheckResult(error.getResponse())) {
      // Terminus' failed check: keep its per-dependency details beside the problem fields.
      const { status: checkStatus, info, error: failed, details } = error.getResponse() as HealthCheckBody;
      return problem(error.getStatus(), 'not-ready', 'Not ready', 'One or more readiness checks failed', {
        checkStatus,
        info,
        error: failed,
        details,
      });
    }
    if (error instanceof HttpException) {
      const status = error.getStatus();
      const mapped = problem(status, undefined, httpTitle(status), httpDetail(error));
      if (status === 401) return { ...mapped, headers: { 'WWW-Authenticate': 'Bearer' } };
      if (status === 404 && !(error.getResponse() as { message?: unknown }).message) {
        return problem(status, undefined, httpTitle(status), `No route for ${request.method} ${request.path}`);
      }
      return mapped;
    }
    return problem(HttpStatus.INTERNAL_SERVER_ERROR, undefined, 'Internal Server Error', 'An unexpected error occurred; it has been logged');
  }
}

interface HealthCheckBody {
  status: string;
  info?: unknown;
  error?: unknown;
  details: unknown;
}

function isHealthCheckResult(body: unknown): body is HealthCheckBody {
  return typeof body === 'object' && body !== null && 'details' in body && 'status' in body;
}

function problem(
  status: number,
  slug: string | undefined,
  title: string,
  detail: string,
  extensions: Record<string, unknown> = {},
): Mapped {
  return { problem: { type: slug ? problemTypeUri(slug) : 'about:blank', title, status, detail, ...extensions } };
}

function retryLater(slug: string, title: string, detail: string, retryAfterSeconds: number): Mapped {
  return {
    ...problem(HttpStatus.SERVICE_UNAVAILABLE, slug, title, detail, { retryAfterSeconds }),
    headers: { 'Retry-After': String(retryAfterSeconds) },
  };
}

function httpTitle(status: number): string {
  const name = HttpStatus[status];
  if (typeof name !== 'string') return 'Error';
  return name
    .toLowerCase()
    .split('_')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join(' ');
}

function httpDetail(error: HttpException): string {
  const body = error.getResponse();
  if (typeof body === 'string') return body;
  const message = (body as { message?: unknown }).message;
  if (Array.isArray(message)) return message.join('; ');
  return typeof message === 'string' ? message : error.message;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}
