import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { queryRows } from '../database/sql';
import { TransactionRunner } from '../database/transaction-runner';
import { Metrics } from '../observability/metrics';

/** Arbitrary constant key of the advisory lock that lets one instance at a time reconcile. */
const RECONCILIATION_LOCK_KEY = 7_317_002;
const MAX_LOGGED_MISMATCHES = 50;

export interface ReconciliationResult {
  ran: boolean;
  mismatches: Array<{ matchId: string; bookedSlots: number; expectedSlots: number; heldSlots: number; expectedHeldSlots: number }>;
}

/**
 * Every RECONCILE_INTERVAL_MS, compares each match's counters with the sums of its confirmed
 * bookings and active holds, exports the drift as metrics and logs every mismatch at error level. A drift means
 * a bug: the counters are only ever changed under the match row lock.
 *
 * One instance at a time: the check runs in a transaction that takes a transaction-level
 * advisory lock; an instance that does not get it skips the round. One statement reads one
 * snapshot, so a booking committing meanwhile cannot show as a false drift.
 */
@Injectable()
export class ReconciliationJob implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReconciliationJob.name);
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly transactions: TransactionRunner,
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'reconciliation'>,
  ) {}

  onApplicationBootstrap(): void {
    const { intervalMs } = this.config.reconciliation;
    if (intervalMs === 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.runOnce()
        .catch((error: unknown) => this.logger.error(`Reconciliation failed: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => (this.running = undefined));
    }, intervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async runOnce(): Promise<ReconciliationResult> {
    try {
      const result = await this.transactions.run('reconcile-counters', async (queryRunner) => {
        const [lock] = await queryRows<{ acquired: boolean }>(queryRunner, 'SELECT pg_try_advisory_xact_lock($1) AS acquired', [
          RECONCILIATION_LOCK_KEY,
        ]);
        if (!lock?.acquired) return { ran: false, mismatches: [] };
        const rows = await queryRows<{ id: string; booked_slots: number; expected_slots: string; held_slots: number; expected_held_slots: string }>(
          queryRunner,
          `SELECT m.id, m.booked_slots, m.held_slots, b.confirmed AS expected_slots, h.active AS expected_held_slots
             FROM matches m
             CROSS JOIN LATERAL (SELECT COALESCE(SUM(slots), 0) AS confirmed FROM bookings WHERE match_id = m.id AND status = 'confirmed') b
             CROSS JOIN LATERAL (SELECT COALESCE(SUM(slots), 0) AS active FROM holds WHERE match_id = m.id AND status = 'active') h
            WHERE m.booked_slots <> b.confirmed OR m.held_slots <> h.active`,
        );
        return {
          ran: true,
          mismatches: rows.map((row) => ({
            matchId: row.id,
            bookedSlots: row.booked_slots,
            expectedSlots: Number(row.expected_slots),
            heldSlots: row.held_slots,
            expectedHeldSlots: Number(row.expected_held_slots),
          })),
        };
      });
      this.report(result);
      return result;
    } catch (error) {
      this.metrics.reconciliationRuns.inc({ result: 'failed' });
      throw error;
    }
  }

  private report(result: ReconciliationResult): void {
    if (!result.ran) {
      this.metrics.reconciliationRuns.inc({ result: 'skipped' });
      return;
    }
    this.metrics.reconciliationRuns.inc({ result: 'completed' });
    this.metrics.counterDriftMatches.set(result.mismatches.length);
    this.metrics.counterDriftSlots.set(
      result.mismatches.reduce((sum, m) => sum + Math.abs(m.bookedSlots - m.expectedSlots) + Math.abs(m.heldSlots - m.expectedHeldSlots), 0),
    );
    for (const mismatch of result.mismatches.slice(0, MAX_LOGGED_MISMATCHES)) {
      this.logger.error(
        `Counter drift on match ${mismatch.matchId}: booked_slots=${mismatch.bookedSlots} (confirmed bookings sum to ${mismatch.expectedSlots}), ` +
          `held_slots=${mismatch.heldSlots} (active holds sum to ${mismatch.expectedHeldSlots})`,
      );
    }
    if (result.mismatches.length > MAX_LOGGED_MISMATCHES) {
      this.logger.error(`... and ${result.mismatches.length - MAX_LOGGED_MISMATCHES} more matches with counter drift`);
    }
  }
}
