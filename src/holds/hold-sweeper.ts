import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { queryRows } from '../database/sql';
import { TransactionRunner } from '../database/transaction-runner';
import { LockService } from '../locks/lock.service';
import { HoldsRepository } from './holds.repository';

const BATCH_MATCHES = 100;
const MAX_BATCHES_PER_RUN = 50;
/** Arbitrary constant key of the advisory lock that stands in for the Redis lock when there is no Redis. */
const SWEEPER_ADVISORY_LOCK_KEY = 7_317_003;

/**
 * Every HOLD_SWEEP_INTERVAL_MS, releases expired holds in batches, on one instance at a time:
 * under the lock service when Redis is up, else under a transaction-level PostgreSQL advisory
 * lock. Availability never waits for it (see slot-availability.ts); it keeps counters tidy.
 *
 * Each batch locks the match rows first (lock order: matches, then holds) with SKIP LOCKED, so
 * it never waits behind bookings: a busy match is simply left to the next round, or to its own
 * bookings, which release its expired holds themselves.
 */
@Injectable()
export class HoldSweeper implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(HoldSweeper.name);
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly holds: HoldsRepository,
    private readonly transactions: TransactionRunner,
    private readonly locks: LockService,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'holds'>,
  ) {}

  onApplicationBootstrap(): void {
    const { sweepIntervalMs } = this.config.holds;
    if (sweepIntervalMs === 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.runOnce()
        .catch((error: unknown) => this.logger.error(`Hold sweep failed: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => (this.running = undefined));
    }, sweepIntervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  /** Returns how many holds expired, or null when another instance is sweeping. */
  async runOnce(): Promise<number | null> {
    if (this.locks.available) {
      try {
        const outcome = await this.locks.withLock('hold-sweeper', { ttlMs: 30_000 }, (signal) => this.sweep(signal, false));
        return outcome === null ? null : outcome.result;
      } catch (error) {
        this.logger.warn(`Lock service unavailable (${error instanceof Error ? error.message : String(error)}); sweeping under the PostgreSQL advisory lock`);
      }
    }
    return this.sweep(new AbortController().signal, true);
  }

  private async sweep(signal: AbortSignal, underAdvisoryLock: boolean): Promise<number | null> {
    let expired = 0;
    for (let batch = 0; batch < MAX_BATCHES_PER_RUN && !signal.aborted; batch += 1) {
      const candidates = await this.holds.matchesWithDueHolds(BATCH_MATCHES);
      if (candidates.length === 0) break;
      const released = await this.transactions.run('sweep-holds', async (queryRunner) => {
        if (underAdvisoryLock) {
          const [lock] = await queryRows<{ acquired: boolean }>(queryRunner, 'SELECT pg_try_advisory_xact_lock($1) AS acquired', [SWEEPER_ADVISORY_LOCK_KEY]);
          if (!lock?.acquired) return null;
        }
        const locked = await queryRows<{ id: string }>(
          queryRunner,
          'SELECT id FROM matches WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE SKIP LOCKED',
          [candidates],
        );
        return locked.length === 0 ? 0 : (await this.holds.expireDue(queryRunner, locked.map((row) => row.id))).holds;
      });
      if (released === null) return batch === 0 ? null : expired;
      expired += released;
      if (released === 0) break; // only busy matches left: the next round takes them
    }
    if (expired > 0) this.logger.log(`Released ${expired} expired hold(s)`);
    return expired;
  }
}
