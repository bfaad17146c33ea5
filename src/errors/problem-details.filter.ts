import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, HttpStatus, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { translateDatabaseError } from '../database/database-errors';
import { answerFor, type ProblemAnswer, problemAnswer, sendProblem } from './problem';
import { describeError } from './describe-error';
import { requestPath } from '../http/request-path';

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
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    const mapped = this.map(translateDatabaseError(exception), request);
    if (mapped.problem.status >= 500) {
      this.logger.error(
        `${request.method} ${request.originalUrl} failed with ${mapped.problem.status}: ${describeError(exception)}`,
        exception instanceof Error ? exception.stack : undefined,
      );
    }
    if (reply.sent || reply.raw.headersSent) {
      // Nothing sensible can be sent any more; end the exchange so the client does not hang.
      reply.raw.end();
      return;
    }
    // The request id (X-Request-Id) ties the answer to the log lines of the request.
    const requestId: unknown = request.id;
    sendProblem(
      reply,
      { ...mapped.problem, instance: request.originalUrl, ...(typeof requestId === 'string' && { requestId }) },
      mapped.headers,
    );
  }

  private map(error: unknown, request: FastifyRequest): ProblemAnswer {
    // Domain errors, request validation and rate limits: their classes name their problem type (problem-types.ts).
    const described = answerFor(error);
    if (described) return described;
    if (error instanceof HttpException && isHealthCheckResult(error.getResponse())) {
      // Terminus' failed check: keep its per-dependency details beside the problem fields.
      const { status: checkStatus, info, error: failed, details } = error.getResponse() as HealthCheckBody;
      return problemAnswer('not-ready', 'One or more readiness checks failed', { checkStatus, info, error: failed, details });
    }
    if (error instanceof HttpException) {
      const status = error.getStatus();
      const mapped = plainHttp(status, httpDetail(error));
      if (status === 401) return { ...mapped, headers: { 'WWW-Authenticate': 'Bearer' } };
      if (status === 404 && !(error.getResponse() as { message?: unknown }).message) {
        return plainHttp(status, `No route for ${request.method} ${requestPath(request)}`);
      }
      return mapped;
    }
    return plainHttp(HttpStatus.INTERNAL_SERVER_ERROR, 'An unexpected error occurred; it has been logged');
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

/** An about:blank problem: a plain HTTP error, titled by its status. */
function plainHttp(status: number, detail: string): ProblemAnswer {
  return { problem: { type: 'about:blank', title: httpTitle(status), status, detail }, headers: {} };
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
