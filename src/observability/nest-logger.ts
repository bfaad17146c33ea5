import type { LoggerService } from '@nestjs/common';
import type { Level, Logger } from 'pino';
import { requestLogger } from './logging';

/** A V8 stack trace as Nest passes it to error(): "Error: ...\n    at fn (file:1:2)". */
const STACK = /\n\s+at .+/;

/**
 * Nest's LoggerService over pino, from the first line of a start to the last of a shutdown, so
 * that Nest's own lines and those of `new Logger(context)` are JSON lines like the rest. A line
 * written while a request is handled goes through that request's logger, so it carries the
 * request's id (requestLogging in logging.ts); any other through the root logger. Nest passes
 * the context (and for errors a stack) as trailing string arguments.
 */
export class NestLogger implements LoggerService {
  constructor(private readonly rootLogger: Logger) {}

  log(message: unknown, ...params: unknown[]): void {
    this.write('info', message, params);
  }

  error(message: unknown, ...params: unknown[]): void {
    this.write('error', message, params);
  }

  warn(message: unknown, ...params: unknown[]): void {
    this.write('warn', message, params);
  }

  debug(message: unknown, ...params: unknown[]): void {
    this.write('debug', message, params);
  }

  verbose(message: unknown, ...params: unknown[]): void {
    this.write('trace', message, params);
  }

  fatal(message: unknown, ...params: unknown[]): void {
    this.write('fatal', message, params);
  }

  private write(level: Level, message: unknown, params: unknown[]): void {
    const logger = requestLogger() ?? this.rootLogger;
    if (!logger.isLevelEnabled(level)) return;
    const strings = params.filter((param): param is string => typeof param === 'string');
    const stack = strings.find((param) => STACK.test(param));
    const context = strings.filter((param) => param !== stack).at(-1);
    const fields: Record<string, unknown> = {};
    if (context !== undefined) fields.context = context;
    if (message instanceof Error) {
      logger[level]({ ...fields, err: message }, message.message);
    } else {
      if (stack !== undefined) fields.stack = stack;
      logger[level](fields, typeof message === 'string' ? message : JSON.stringify(message));
    }
  }
}
