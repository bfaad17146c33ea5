import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ADVISORY_LOCK_KEYS } from '../database/advisory-locks';
import { type Exclusively, JobRunner, type PeriodicJob, SKIPPED } from '../jobs/job-runner';
import { Metrics } from '../observability/metrics';
import { type CounterDrift, SlotLedger } from './slot-ledger';

const MAX_LOGGED_MISMATCHES = 50;

export interface ReconciliationResult {
  ran: boolean;
  mismatches: CounterDrift[];
}

/**
 * Every RECONCILE_INTERVAL_MS, compares each match's counters with the sums of its confirmed
 * bookings and active holds (SlotLedger.counterDrift), exports the drift as metrics and logs
 * every mismatch at error level. A drift means a bug: the counters are only ever changed by the
 * slot ledger, under the match row lock. One instance at a time.
 */
@Injectable()
export class ReconciliationJob implements PeriodicJob<CounterDrift[]> {
  readonly name = 'reconcile-counters';
  readonly lockKey = ADVISORY_LOCK_KEYS.reconcileCounters;
  readonly intervalMs: number;
  private readonly logger = new Logger(ReconciliationJob.name);

  constructor(
    private readonly ledger: SlotLedger,
    private readonly runner: JobRunner,
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'reconciliation'>,
  ) {
    this.intervalMs = config.reconciliation.intervalMs;
    runner.schedule(this);
  }

  async runOnce(): Promise<ReconciliationResult> {
    const mismatches = await this.runner.runNow(this);
    return mismatches === null ? { ran: false, mismatches: [] } : { ran: true, mismatches };
  }

  async run(exclusively: Exclusively): Promise<CounterDrift[] | null> {
    const mismatches = await exclusively((queryRunner) => this.ledger.counterDrift(queryRunner));
    if (mismatches === SKIPPED) return null;
    this.report(mismatches);
    return mismatches;
  }

  private report(mismatches: CounterDrift[]): void {
    this.metrics.counterDriftMatches.set(mismatches.length);
    this.metrics.counterDriftSlots.set(mismatches.reduce((sum, m) => sum + Math.abs(m.bookedSlots - m.expectedSlots) + Math.abs(m.heldSlots - m.expectedHeldSlots), 0));
    for (const mismatch of mismatches.slice(0, MAX_LOGGED_MISMATCHES)) {
      this.logger.error(
        `Counter drift on match ${mismatch.matchId}: booked_slots=${mismatch.bookedSlots} (confirmed bookings sum to ${mismatch.expectedSlots}), ` +
          `held_slots=${mismatch.heldSlots} (active holds sum to ${mismatch.expectedHeldSlots})`,
      );
    }
    if (mismatches.length > MAX_LOGGED_MISMATCHES) {
      this.logger.error(`... and ${mismatches.length - MAX_LOGGED_MISMATCHES} more matches with counter drift`);
    }
  }
}
