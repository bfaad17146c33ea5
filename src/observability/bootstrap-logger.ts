import type { LoggerService } from '@nestjs/common';
import type { Level, Logger } from 'pino';

/** A V8 stack trace as Nest passes it to error(): "Error: ...\n    at fn (file:1:2)". */
const STACK = /\n\s+at .+/;

/**
 * Nest's LoggerService over the root pino logger, for what Nest logs before the application
 * and nestjs-pino's logger exist: module initialisation, and the error of a failed start. Without
 * it Nest writes those lines in colour through its own console logger, not as JSON lines.
 * Nest passes the context (and for errors a stack) as trailing string arguments.
 */
export class BootstrapLogger implements LoggerService {
  constructor(private readonly logger: Logger) {}

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
    const strings = params.filter((param): param is string => typeof param === 'string');
    const stack = strings.find((param) => STACK.test(param));
    const context = strings.filter((param) => param !== stack).at(-1);
    const fields: Record<string, unknown> = {};
    if (context !== undefined) fields.context = context;
    if (message instanceof Error) {
      this.logger[level]({ ...fields, err: message }, message.message);
    } else {
      if (stack !== undefined) fields.stack = stack;
      this.logger[level](fields, typeof message === 'string' ? message : JSON.stringify(message));
    }
  }
}
