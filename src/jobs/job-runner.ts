import { type BeforeApplicationShutdown, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import { tryTransactionLock } from '../database/advisory-locks';
import { TransactionRunner } from '../database/transaction-runner';
import { Metrics } from '../observability/metrics';
import { RepeatedFailureLog } from '../observability/repeated-failure-log';

/** What `exclusively` answers when another instance holds the job's lock, or the service is stopping. */
export const SKIPPED = Symbol('skipped');

/** Runs one step of a job in a transaction that holds the job's advisory lock. */
export type Exclusively = <R>(step: (queryRunner: QueryRunner) => Promise<R>) => Promise<R | typeof SKIPPED>;

/** Periodic work that one instance at a time does. */
export interface PeriodicJob<T> {
  /** Names the job in logs and metrics, and its transactions. */
  readonly name: string;
  /** Time between runs; 0 turns the job off. */
  readonly intervalMs: number;
  /** The key of its advisory lock (database/advisory-locks.ts). */
  readonly lockKey: number;
  /**
   * One run, its steps each in `exclusively`. Returns null when it did nothing because another
   * instance held the lock.
   */
  run(exclusively: Exclusively): Promise<T | null>;
}

/**
 * The one runner of periodic single-instance work: each scheduled job runs every `intervalMs`
 * (never two runs of a job at once in an instance), each of its steps in a transaction that
 * first takes the job's PostgreSQL advisory lock without waiting, so that across instances one
 * does the work and the others skip. A transaction-level lock ends with its transaction, so it
 * survives no crash and needs no session (safe behind a transaction pooler). Runs are counted
 * in booking_job_runs_total; on shutdown no new step starts and the running ones are awaited.
 */
@Injectable()
export class JobRunner implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(JobRunner.name);
  private readonly jobs: Array<PeriodicJob<unknown>> = [];
  private readonly timers: NodeJS.Timeout[] = [];
  private readonly running = new Map<string, Promise<unknown>>();
  private readonly failureLogs = new Map<string, RepeatedFailureLog>();
  private stopping = false;

  constructor(
    private readonly transactions: TransactionRunner,
    private readonly metrics: Metrics,
  ) {}

  /** Called by each job's constructor; the timers start when the application has started. */
  schedule(job: PeriodicJob<unknown>): void {
    this.jobs.push(job);
    this.failureLogs.set(job.name, new RepeatedFailureLog(this.logger, `Job "${job.name}"`));
  }

  onApplicationBootstrap(): void {
    for (const job of this.jobs) {
      if (job.intervalMs === 0) continue;
      const timer = setInterval(() => {
        if (this.running.has(job.name)) return;
        const failures = this.failureLogs.get(job.name)!;
        const run = this.runNow(job)
          .then(() => failures.succeeded())
          .catch((error: unknown) => failures.failed(error))
          .finally(() => this.running.delete(job.name));
        this.running.set(job.name, run);
      }, job.intervalMs);
      timer.unref();
      this.timers.push(timer);
    }
  }

  /** Before any module's onApplicationShutdown, which is where the database pool is destroyed: the steps under way still have it. */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    for (const timer of this.timers) clearInterval(timer);
    await Promise.all(this.running.values());
  }

  /** Runs the job once now (the timers call this; so do tests and operators' tools). Rejects with the job's error. */
  async runNow<T>(job: PeriodicJob<T>): Promise<T | null> {
    const stopTimer = this.metrics.jobDuration.startTimer({ job: job.name });
    try {
      const result = await job.run((step) => this.exclusively(job, step));
      this.metrics.jobRuns.inc({ job: job.name, result: result === null ? 'skipped' : 'completed' });
      return result;
    } catch (error) {
      this.metrics.jobRuns.inc({ job: job.name, result: 'failed' });
      throw error;
    } finally {
      stopTimer();
    }
  }

  private async exclusively<R>(job: PeriodicJob<unknown>, step: (queryRunner: QueryRunner) => Promise<R>): Promise<R | typeof SKIPPED> {
    if (this.stopping) return SKIPPED;
    return this.transactions.run(job.name, async (queryRunner) => ((await tryTransactionLock(queryRunner, job.lockKey)) ? step(queryRunner) : SKIPPED));
  }
}

/**
 * Repeats `step` under the job's lock, each time in a transaction of its own, until it says the
 * work is done or `maxRounds` have run. Returns the sum of what the steps counted, or null when
 * the first step was skipped (another instance holds the lock).
 */
export async function repeatExclusively(
  exclusively: Exclusively,
  maxRounds: number,
  step: (queryRunner: QueryRunner) => Promise<{ count: number; done: boolean }>,
): Promise<number | null> {
  let total = 0;
  for (let round = 0; round < maxRounds; round += 1) {
    const result = await exclusively(step);
    if (result === SKIPPED) return round === 0 ? null : total;
    total += result.count;
    if (result.done) break;
  }
  return total;
}
