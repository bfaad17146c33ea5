import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { CommitOutcomeUnknownError, DatabaseUnavailableError } from '../errors/domain-errors';
import { Metrics } from '../observability/metrics';

/** What a look-up after an unknown COMMIT outcome found. */
export type CommitOutcome<T> = { found: 'committed'; value: T } | { found: 'rolled_back' } | { found: 'unknown' };

const RETRY_INTERVAL_MS = 200;

/**
 * After CommitOutcomeUnknownError (the connection failed once COMMIT was sent), a write whose
 * plain retry would not be harmless asks here what happened, instead of inviting a retry that
 * could book twice. Commits are atomic, so one row the transaction wrote tells for all of it.
 */
@Injectable()
export class CommitOutcomes {
  private readonly logger = new Logger(CommitOutcomes.name);
  private readonly timeoutMs: number;

  constructor(
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'database'>,
    private readonly metrics: Metrics,
  ) {
    this.timeoutMs = config.database.outcomeCheckTimeoutMs;
  }

  /**
   * Runs a write's transaction (`run`); when its COMMIT outcome is unknown, answers what really
   * happened: `lookUp`'s value when the write is found, a plain DatabaseUnavailableError when it
   * rolled back (a retry is safe), and `unknown(cause)` when the database cannot be asked in time.
   */
  async resolve<T>(
    transaction: string,
    run: () => Promise<T>,
    lookUp: () => Promise<T | undefined>,
    unknown: (cause: CommitOutcomeUnknownError) => Error,
  ): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (!(error instanceof CommitOutcomeUnknownError)) throw error;
      const check = await this.check(transaction, lookUp);
      if (check.found === 'committed') return check.value;
      if (check.found === 'rolled_back') {
        throw new DatabaseUnavailableError(`"${transaction}" rolled back when the database connection failed during its COMMIT`, { cause: error });
      }
      throw unknown(error);
    }
  }

  /**
   * Runs `lookUp` (a read of what the transaction wrote, on a new connection: undefined when it
   * is not there) as soon as the database answers again, for at most
   * DATABASE_OUTCOME_CHECK_TIMEOUT_MS. Never rejects: a database that does not answer in time
   * gives 'unknown'.
   */
  async check<T>(transaction: string, lookUp: () => Promise<T | undefined>): Promise<CommitOutcome<T>> {
    const deadline = performance.now() + this.timeoutMs;
    let lastError: unknown;
    while (performance.now() < deadline) {
      try {
        const value = await beforeDeadline(lookUp(), deadline);
        const outcome: CommitOutcome<T> = value === undefined ? { found: 'rolled_back' } : { found: 'committed', value };
        this.metrics.commitOutcomeChecks.inc({ transaction, found: outcome.found });
        this.logger.log(`Transaction "${transaction}" whose COMMIT outcome was unknown has ${outcome.found === 'committed' ? 'committed' : 'rolled back'}`);
        return outcome;
      } catch (error) {
        lastError = error;
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(RETRY_INTERVAL_MS, deadline - performance.now()))));
      }
    }
    this.metrics.commitOutcomeChecks.inc({ transaction, found: 'unknown' });
    this.logger.warn(
      `Could not tell within ${this.timeoutMs} ms whether transaction "${transaction}" committed` +
        (lastError instanceof Error ? ` (last error: ${lastError.message})` : ''),
    );
    return { found: 'unknown' };
  }
}

/** `promise`, or a rejection once `deadline` (performance.now()) passes; a late result or failure of `promise` is dropped. */
function beforeDeadline<T>(promise: Promise<T>, deadline: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error('no answer before the deadline')), Math.max(0, deadline - performance.now()));
  });
  promise.catch(() => undefined); // a look-up that loses the race must not surface as an unhandled rejection
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}
