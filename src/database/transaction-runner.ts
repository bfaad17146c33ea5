import { Inject, Injectable, Logger } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { destroyConnection } from './connection-release';
import { CommitOutcomeUnknownError, ConcurrencyConflictError } from '../errors/domain-errors';
import { Metrics } from '../observability/metrics';
import { inSpan } from '../observability/spans';
import { isConnectionFailure, isOutcomeAmbiguous, PG_ERROR, sqlState, translateDatabaseError } from './database-errors';
import { describeError } from '../errors/describe-error';

const CONFLICT_BACKOFF_BASE_MS = 20;

/** Steps that must share the transaction of the work (e.g. the idempotency record of a write). */
export interface TransactionHooks {
  /** Runs first in the transaction, before the work. */
  before?: (queryRunner: QueryRunner) => Promise<void>;
  /** Runs after the work, with its result, just before COMMIT. */
  after?: (queryRunner: QueryRunner, result: unknown) => Promise<void>;
}

export interface RunOptions {
  /** Called before each rerun after a deadlock or serialization failure (e.g. to count it). */
  onRetry?: () => void;
  hooks?: TransactionHooks;
}

/**
 * The one place where the service opens, commits, rolls back and releases a transaction.
 * Every booking, cancellation and capacity change goes through run().
 */
@Injectable()
export class TransactionRunner {
  private readonly logger = new Logger(TransactionRunner.name);
  private readonly conflictRetries: number;

  private readonly slowTransactionMs: number;
  /** Behind a transaction pooler, the session settings of data-source-options.ts, set at the start of each transaction instead. */
  private readonly perTransactionSettings: string | undefined;

  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'database'>,
    private readonly metrics: Metrics,
  ) {
    this.conflictRetries = config.database.conflictRetries;
    this.slowTransactionMs = config.database.slowTransactionMs;
    this.perTransactionSettings = config.database.pooler === 'transaction' ? transactionSettingsSql(config.database) : undefined;
  }

  /**
   * Runs `work` inside a transaction on a connection of its own. Lock waits are bounded by
   * lock_timeout, a setting of every service session (data-source-options.ts). A deadlock or
   * serialization failure rolls the whole transaction back, so `work` is run again, a bounded
   * number of times with jittered backoff, before ConcurrencyConflictError. Database failures
   * that a client can retry are translated to domain errors (LockTimeoutError,
   * DatabaseUnavailableError, ...). A connection that fails once COMMIT was sent leaves the
   * outcome unknown: CommitOutcomeUnknownError, never rerun.
   */
  async run<T>(name: string, work: (queryRunner: QueryRunner) => Promise<T>, options: RunOptions = {}): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await inSpan('db.transaction', { 'db.transaction.name': name, 'db.transaction.attempt': attempt }, () => this.runOnce(name, work, options.hooks));
      } catch (error) {
        if (!(error instanceof ConcurrencyConflictError) || attempt > this.conflictRetries) throw error;
        this.metrics.transactionRetries.inc({ transaction: name, reason: sqlState(error.cause) === PG_ERROR.deadlockDetected ? 'deadlock' : 'serialization' });
        options.onRetry?.();
        const delayMs = Math.random() * CONFLICT_BACKOFF_BASE_MS * 2 ** (attempt - 1);
        this.logger.warn(`Transaction "${name}" hit ${describeError(error.cause)}; retry ${attempt} of ${this.conflictRetries} in ${Math.round(delayMs)} ms`);
        await new Promise((resolve) => setTimeout(resolve, delayMs));
      }
    }
  }

  private async runOnce<T>(name: string, work: (queryRunner: QueryRunner) => Promise<T>, hooks: TransactionHooks = {}): Promise<T> {
    const queryRunner = this.dataSource.createQueryRunner();
    let transactionStarted = false;
    let commitSent = false;
    let connectionUnsafe: unknown;
    let startedAt = 0;
    let result: 'committed' | 'rolled_back' = 'rolled_back';
    try {
      // Nearly all waiting for a free pooled connection (or for a new one to open).
      await inSpan('db.pool.acquire', {}, () => queryRunner.connect());
      try {
        await queryRunner.startTransaction();
      } catch (error) {
        // The server may or may not have opened the transaction: never reuse this connection.
        connectionUnsafe = error;
        throw error;
      }
      transactionStarted = true;
      startedAt = performance.now();
      if (this.perTransactionSettings !== undefined) await queryRunner.query(this.perTransactionSettings);
      await hooks.before?.(queryRunner);
      const value = await work(queryRunner);
      await hooks.after?.(queryRunner, value);
      commitSent = true;
      await queryRunner.commitTransaction();
      result = 'committed';
      return value;
    } catch (error) {
      if (transactionStarted && isConnectionFailure(error)) {
        // The connection is gone or stuck (a client-side query timeout): a ROLLBACK sent on it
        // would wait for another timeout. Closing it makes the server roll back instead.
        connectionUnsafe = error;
      } else if (transactionStarted) {
        try {
          await queryRunner.rollbackTransaction();
        } catch (rollbackError) {
          connectionUnsafe = rollbackError;
          this.logger.error(
            `Rollback of transaction "${name}" failed; its connection will be destroyed. Original error: ${describeError(error)}`,
            rollbackError instanceof Error ? rollbackError.stack : String(rollbackError),
          );
        }
      }
      if (commitSent && isOutcomeAmbiguous(error)) {
        this.metrics.commitOutcomeUnknown.inc({ transaction: name });
        this.logger.warn(`The connection failed during COMMIT of transaction "${name}" (${describeError(error)}): it may or may not have committed`);
        throw new CommitOutcomeUnknownError(`The connection failed during COMMIT of "${name}"; the transaction may have committed`, { cause: error });
      }
      throw translateDatabaseError(error);
    } finally {
      if (transactionStarted) this.observeDuration(name, result, performance.now() - startedAt);
      await this.release(name, queryRunner, connectionUnsafe);
    }
  }

  private observeDuration(name: string, result: 'committed' | 'rolled_back', durationMs: number): void {
    this.metrics.transactionDuration.observe({ transaction: name, result }, durationMs / 1000);
    if (durationMs > this.slowTransactionMs) {
      this.metrics.slowTransactions.inc({ transaction: name });
      this.logger.warn(`Slow transaction "${name}": ${Math.round(durationMs)} ms (${result}); row locks were held all along`);
    }
  }

  /** Never throws: a release failure is logged and must not hide the result or the original error. */
  private async release(name: string, queryRunner: QueryRunner, connectionUnsafe: unknown): Promise<void> {
    try {
      if (connectionUnsafe !== undefined || queryRunner.isTransactionActive) {
        await destroyConnection(queryRunner, connectionUnsafe ?? new Error('released while still inside a transaction'));
      } else {
        await queryRunner.release();
      }
    } catch (releaseError) {
      this.metrics.releaseFailures.inc({ transaction: name });
      this.logger.error(
        `Releasing the connection of transaction "${name}" failed`,
        releaseError instanceof Error ? releaseError.stack : String(releaseError),
      );
    }
  }
}

/**
 * SET LOCAL of every timeout the service relies on, in one simple-protocol round trip: behind a
 * transaction pooler a session setting would stay with a server connection that other clients
 * get next, and the pooler refuses them in the startup packet anyway.
 */
function transactionSettingsSql(database: AppConfig['database']): string {
  const settings = {
    lock_timeout: database.lockTimeoutMs,
    statement_timeout: database.statementTimeoutMs,
    idle_in_transaction_session_timeout: database.idleInTransactionTimeoutMs,
    // The pooler closes the server connection when its client vanishes mid-transaction; this lets
    // a backend waiting on a lock or a long statement notice at once.
    client_connection_check_interval: database.connectionCheckIntervalMs,
  };
  return Object.entries(settings)
    .map(([name, ms]) => `SET LOCAL ${name} = ${Math.trunc(ms)}`)
    .join('; ');
}
