import { trace } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import pino, { type DestinationStream, type Level, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';
import pretty from 'pino-pretty';
import type { AppConfig } from '../config/app-config';

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
    base: { service: 'match-booking' },
    mixin: traceFields,
    // A safety net: request logs carry no headers at all (see the serializer below).
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', '*.password', '*.secret', '*.token', '*.authorization'],
      censor: '[redacted]',
    },
  };
  if (destination) return pino(options, destination);
  if (config.env === 'development' && process.stdout.isTTY) {
    // In this thread and synchronous, unlike a transport: the lines of a failed start are not lost on exit.
    return pino(options, pretty({ translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,service', sync: true }));
  }
  // Synchronous writes: in order, and none left in a buffer when the process exits. With the
  // default asynchronous stream, a failed start under load lost or reordered its last lines.
  return pino(options, pino.destination({ dest: 1, sync: true }));
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

/**
 * The first middleware of the application: gives every request an id (X-Request-Id when the
 * client sent a sane one, else a UUID), echoes it in the response, binds it to every log line
 * written while the request is handled, and writes one access-log line per request.
 */
export function requestLogging(logger: Logger) {
  return pinoHttp({
    logger,
    genReqId: (request: IncomingMessage, response: ServerResponse) => {
      const incoming = request.headers['x-request-id'];
      const id = typeof incoming === 'string' && ACCEPTED_REQUEST_ID.test(incoming) ? incoming : randomUUID();
      response.setHeader('X-Request-Id', id);
      return id;
    },
    autoLogging: { ignore: (request) => QUIET_PATHS.some((path) => request.url?.startsWith(path) ?? false) },
    customLogLevel: (_request, response, error) => (error || response.statusCode >= 500 ? 'error' : response.statusCode >= 400 ? 'warn' : 'info'),
    serializers: {
      // Method and path only: headers (tokens, cookies) and bodies never reach the log.
      // clientAddress is request.ip, the address the per-IP rate limit counts (TRUST_PROXY);
      // remoteAddress is the socket's peer, a load balancer when there is one.
      req: (request: { id: unknown; method: string; url: string; remoteAddress?: string; raw?: { ip?: string } }) => ({
        id: request.id,
        method: request.method,
        url: request.url,
        clientAddress: request.raw?.ip ?? request.remoteAddress,
        remoteAddress: request.remoteAddress,
      }),
      res: (response: { statusCode: number }) => ({ statusCode: response.statusCode }),
    },
  });
}
