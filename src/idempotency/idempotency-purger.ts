import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ADVISORY_LOCK_KEYS } from '../database/advisory-locks';
import { type Exclusively, JobRunner, type PeriodicJob, repeatExclusively } from '../jobs/job-runner';
import { IdempotencyRepository } from './idempotency.repository';

const BATCH = 1_000;
const MAX_BATCHES = 100;

/** Every IDEMPOTENCY_PURGE_INTERVAL_MS, deletes expired idempotency records in batches, on one instance at a time. */
@Injectable()
export class IdempotencyPurger implements PeriodicJob<number> {
  readonly name = 'purge-idempotency-keys';
  readonly lockKey = ADVISORY_LOCK_KEYS.purgeIdempotencyKeys;
  readonly intervalMs: number;
  private readonly logger = new Logger(IdempotencyPurger.name);

  constructor(
    private readonly records: IdempotencyRepository,
    private readonly runner: JobRunner,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'idempotency'>,
  ) {
    this.intervalMs = config.idempotency.purgeIntervalMs;
    runner.schedule(this);
  }

  /** Returns how many records were purged, or null when another instance is purging. */
  runOnce(): Promise<number | null> {
    return this.runner.runNow(this);
  }

  async run(exclusively: Exclusively): Promise<number | null> {
    const purged = await repeatExclusively(exclusively, MAX_BATCHES, async (queryRunner) => {
      const deleted = await this.records.purgeExpired(queryRunner, BATCH);
      return { count: deleted, done: deleted < BATCH };
    });
    if (purged) this.logger.log(`Purged ${purged} expired idempotency record(s)`);
    return purged;
  }
}
