import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ADVISORY_LOCK_KEYS } from '../database/advisory-locks';
import { SlotLedger } from '../inventory/slot-ledger';
import { type Exclusively, JobRunner, type PeriodicJob, repeatExclusively } from '../jobs/job-runner';

const BATCH_MATCHES = 100;
const MAX_BATCHES_PER_RUN = 50;

/**
 * Every HOLD_SWEEP_INTERVAL_MS, releases expired holds in batches of matches, on one instance at
 * a time. Availability never waits for it (an expired hold never blocks a take, see
 * SlotLedger.freeSlots); it keeps the stored counters tidy. A batch skips the matches that are
 * locked right now: those are left to the next round, or to their own bookings.
 */
@Injectable()
export class HoldSweeper implements PeriodicJob<number> {
  readonly name = 'sweep-holds';
  readonly lockKey = ADVISORY_LOCK_KEYS.sweepHolds;
  readonly intervalMs: number;
  private readonly logger = new Logger(HoldSweeper.name);

  constructor(
    private readonly ledger: SlotLedger,
    private readonly runner: JobRunner,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'holds'>,
  ) {
    this.intervalMs = config.holds.sweepIntervalMs;
    runner.schedule(this);
  }

  /** Returns how many holds expired, or null when another instance is sweeping. */
  runOnce(): Promise<number | null> {
    return this.runner.runNow(this);
  }

  async run(exclusively: Exclusively): Promise<number | null> {
    const expired = await repeatExclusively(exclusively, MAX_BATCHES_PER_RUN, async (queryRunner) => {
      const candidates = await this.ledger.matchesWithDueHolds(queryRunner, BATCH_MATCHES);
      const released = candidates.length === 0 ? 0 : await this.ledger.releaseExpiredHoldsOfIdleMatches(queryRunner, candidates);
      // Done when no hold is due, or only busy matches are left (the next round takes them).
      return { count: released, done: released === 0 };
    });
    if (expired) this.logger.log(`Released ${expired} expired hold(s)`);
    return expired;
  }
}
