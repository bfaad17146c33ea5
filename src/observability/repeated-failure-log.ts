import type { Logger } from '@nestjs/common';
import { describeError } from '../errors/describe-error';

/**
 * Logs a failure of periodic work (a job every 250 ms while the database is down, say) without
 * flooding the log: the first failure at once, then at most one line per `everyMs` with how many
 * were left out, and one line when the work succeeds again.
 */
export class RepeatedFailureLog {
  private failingSince: number | undefined;
  private lastReportAt: number | undefined;
  private leftOut = 0;
  private failures = 0;

  constructor(
    private readonly logger: Logger,
    private readonly what: string,
    private readonly everyMs = 30_000,
  ) {}

  failed(error: unknown): void {
    const now = Date.now();
    this.failingSince ??= now;
    this.failures += 1;
    if (this.lastReportAt !== undefined && now - this.lastReportAt < this.everyMs) {
      this.leftOut += 1;
      return;
    }
    const since = this.leftOut > 0 ? ` (${this.leftOut} more failure(s) since the last report)` : '';
    this.logger.error(`${this.what} failed${since}: ${describeError(error)}`, error instanceof Error ? error.stack : undefined);
    this.lastReportAt = now;
    this.leftOut = 0;
  }

  succeeded(): void {
    if (this.failingSince === undefined) return;
    this.logger.log(`${this.what} works again, after ${this.failures} failure(s) in ${((Date.now() - this.failingSince) / 1000).toFixed(1)} s`);
    this.failingSince = undefined;
    this.lastReportAt = undefined;
    this.leftOut = 0;
    this.failures = 0;
  }
}
