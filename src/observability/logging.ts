import { trace } from '@opentelemetry/api';
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import type { onRequestHookHandler } from 'fastify';
import type { IncomingMessage } from 'node:http';
import pretty from 'pino-pretty';
import type { AppConfig } from '../config/app-config';
import { workerLogFields } from '../lifecycle/cluster-worker';
import { stdoutLogOutput } from './log-output';

/** Injection token of the root pino logger. */
export const ROOT_LOGGER = Symbol('ROOT_LOGGER');

const PINO_LEVELS: Record<AppConfig['logLevel'], Level> = {
  fatal: 'fatal',
  error: 'error',
  warn: 'warn',
  log: 'info',
  debug: 'debug',
  verbose: 'trace',
};

/** Endpoints polled by machines: answered, but not written to the access log. */
const QUIET_PATHS = ['/health/', '/metrics'];
const ACCEPTED_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * JSON lines, one per event, from the first line to the last; readable (pino-pretty) only in
 * development on a terminal, so that a log pipeline never gets colour codes. `destination`
 * lets tests capture the output.
 */
export function createRootLogger(config: Pick<AppConfig, 'logLevel' | 'env'>, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level: PINO_LEVELS[config.logLevel],
    // In a cluster worker, every line says which one (WEB_CONCURRENCY > 1); a single process's lines are unchanged.
    base: { service: 'match-booking', ...workerLogFields() },
    mixin: traceFields,
    // Request lines carry chosen fields only, never headers or bodies (requestLogging below), and
    // the one kind of foreign object logged is an error: its secret-looking members are censored
    // there. pino's path redaction did the same for every line, at a cost of about a tenth of
    // the service's allocations under load.
    serializers: { err: serializeError },
  };
  if (destination) return pino(options, destination);
  if (config.env === 'development' && process.stdout.isTTY) {
    // In this thread and synchronous, unlike a transport: the lines of a failed start are not lost on exit.
    return pino(options, pretty({ translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', sync: true }));
  }
  // Synchronous writes, once per turn of the event loop (log-output.ts): in order, and none left
  // behind at exit. With pino's asynchronous stream, a failed start under load lost or reordered
  // its last lines; with one write per line, the writes cost more than the lines.
  return pino(options, stdoutLogOutput());
}

/** Members of a logged error whose values are replaced: a driver or library error may carry credentials. */
const SECRET_MEMBER = /password|secret|token|authorization|cookie/i;
const CENSORED = '[redacted]';

/**
 * pino's error serializer (type, message, stack, cause, own members), with secret-looking members
 * censored. It hands back an object that is not an error as it is: that one is copied first, so
 * that logging never changes the caller's object.
 */
export function serializeError(error: unknown): unknown {
  if (typeof error !== 'object' || error === null) return error;
  const serialized = pino.stdSerializers.err(error as Error) as unknown;
  const fields = serialized === error ? { ...(error as Record<string, unknown>) } : (serialized as Record<string, unknown>);
  for (const member of Object.keys(fields)) if (SECRET_MEMBER.test(member)) fields[member] = CENSORED;
  return fields;
}

/**
 * The trace and span of the line, when one is active (tracing.ts), so that a request's lines and
 * its trace find each other; with tracing off there is never an active span. trace_flags 01: the
 * trace is sampled (exported), 00: it is not.
 */
function traceFields(): { trace_id?: string; span_id?: string; trace_flags?: string } {
  const span = trace.getActiveSpan();
  if (!span) return {};
  const { traceId, spanId, traceFlags } = span.spanContext();
  return { trace_id: traceId, span_id: spanId, trace_flags: traceFlags.toString(16).padStart(2, '0') };
}

/** What the access line and every line logged while a request is handled say about it. */
interface RequestFields {
  id: string;
  method: string;
  url: string;
  /** request.ip: the address the per-IP rate limit counts (TRUST_PROXY). */
  clientAddress: string | undefined;
  /** The socket's peer: a load balancer when there is one. */
  remoteAddress: string | undefined;
}

/** The logger of the request being handled, with its fields bound; set by requestLogging. */
const currentRequestLogger = new AsyncLocalStorage<Logger>();

/** The logger of the request whose handling is running now, if any (NestLogger writes through it). */
export function requestLogger(): Logger | undefined {
  return currentRequestLogger.getStore();
}

/**
 * The request's id, as Fastify's genReqId (request.id): X-Request-Id when the client sent a sane
 * one, else a UUID. The problem+json answers quote it (requestId).
 */
export function requestIdOf(request: IncomingMessage): string {
  const incoming = request.headers['x-request-id'];
  return typeof incoming === 'string' && ACCEPTED_REQUEST_ID.test(incoming) ? incoming : randomUUID();
}

/**
 * The first request hook of the application: echoes the request's id (requestIdOf) in the
 * response, binds it to every log line written while the request is handled (requestLogger()),
 * and writes one access-log line per request when its response is done: "request completed", or
 * "request aborted" when the client went away first. Method and path only: headers (tokens,
 * cookies) and bodies never reach the log. Written here rather than with pino-http and
 * nestjs-pino, which cost several times as much per request for the same lines.
 */
export function requestLogging(logger: Logger): onRequestHookHandler {
  return (request, reply, done) => {
    const response = reply.raw;
    // Every answer carries it, errors and 404s included (Fastify keeps a reply's headers for its error answers).
    reply.header('x-request-id', request.id);
    const fields: RequestFields = { id: request.id, method: request.method, url: request.originalUrl, clientAddress: request.ip, remoteAddress: request.socket.remoteAddress };
    const log = logger.child({ req: fields });
    if (!QUIET_PATHS.some((path) => fields.url.startsWith(path))) {
      const startedAt = performance.now();
      response.once('close', () => {
        const completed = response.writableFinished;
        const statusCode = completed ? response.statusCode : null;
        const level: Level = statusCode === null || statusCode < 400 ? 'info' : statusCode < 500 ? 'warn' : 'error';
        log[level]({ res: { statusCode }, responseTime: Math.round(performance.now() - startedAt) }, completed ? 'request completed' : 'request aborted');
      });
    }
    // Fastify runs the rest of the request in this context (the body parser keeps it too).
    currentRequestLogger.run(log, done);
  };
}
