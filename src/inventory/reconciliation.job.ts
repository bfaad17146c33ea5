import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ADVISORY_LOCK_KEYS } from '../database/advisory-locks';
import { type Exclusively, JobRunner, type PeriodicJob, SKIPPED } from '../jobs/job-runner';
import { Metrics } from '../observability/metrics';
import { type CounterDrift, type OfferMismatch, SlotLedger } from './slot-ledger';

const MAX_LOGGED_MISMATCHES = 50;

interface Findings {
  mismatches: CounterDrift[];
  offerMismatches: OfferMismatch[];
}

export interface ReconciliationResult extends Findings {
  ran: boolean;
}

/**
 * Every RECONCILE_INTERVAL_MS, compares each match's counters with the sums of its confirmed
 * bookings, active holds and waiting waitlist entries (SlotLedger.counterDrift), and each
 * waitlist offer with its hold (SlotLedger.offerMismatches); exports both as metrics, with the
 * waiting entries, and logs every mismatch at error level. A mismatch means a bug: counters,
 * offers and holds are only ever changed by the slot ledger, under the match row lock. One
 * instance at a time.
 */
@Injectable()
export class ReconciliationJob implements PeriodicJob<Findings> {
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
    const findings = await this.runner.runNow(this);
    return findings === null ? { ran: false, mismatches: [], offerMismatches: [] } : { ran: true, ...findings };
  }

  async run(exclusively: Exclusively): Promise<Findings | null> {
    const found = await exclusively(async (queryRunner) => ({
      mismatches: await this.ledger.counterDrift(queryRunner),
      offerMismatches: await this.ledger.offerMismatches(queryRunner),
      waitingEntries: await this.ledger.waitingEntries(queryRunner),
    }));
    if (found === SKIPPED) return null;
    this.report(found.mismatches);
    this.reportOffers(found.offerMismatches);
    this.metrics.waitlistWaitingEntries.set(found.waitingEntries);
    return { mismatches: found.mismatches, offerMismatches: found.offerMismatches };
  }

  private reportOffers(mismatches: OfferMismatch[]): void {
    this.metrics.waitlistOfferMismatches.set(mismatches.length);
    for (const mismatch of mismatches.slice(0, MAX_LOGGED_MISMATCHES)) {
      this.logger.error(`Waitlist entry ${mismatch.entryId} is ${mismatch.entryStatus} but the hold of its offer, ${mismatch.holdId}, is ${mismatch.holdStatus} (or holds other slots)`);
    }
  }

  private report(mismatches: CounterDrift[]): void {
    this.metrics.counterDriftMatches.set(mismatches.length);
    this.metrics.counterDriftSlots.set(mismatches.reduce((sum, m) => sum + Math.abs(m.bookedSlots - m.expectedSlots) + Math.abs(m.heldSlots - m.expectedHeldSlots), 0));
    for (const mismatch of mismatches.slice(0, MAX_LOGGED_MISMATCHES)) {
      this.logger.error(
        `Counter drift on match ${mismatch.matchId}: booked_slots=${mismatch.bookedSlots} (confirmed bookings sum to ${mismatch.expectedSlots}), ` +
          `held_slots=${mismatch.heldSlots} (active holds sum to ${mismatch.expectedHeldSlots}), ` +
          `waiting_entries=${mismatch.waitingEntries} (${mismatch.expectedWaitingEntries} entries wait)`,
      );
    }
    if (mismatches.length > MAX_LOGGED_MISMATCHES) {
      this.logger.error(`... and ${mismatches.length - MAX_LOGGED_MISMATCHES} more matches with counter drift`);
    }
  }
}
