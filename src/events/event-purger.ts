import { Inject, Injectable, Logger } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ADVISORY_LOCK_KEYS } from '../database/advisory-locks';
import { type Exclusively, JobRunner, type PeriodicJob, repeatExclusively } from '../jobs/job-runner';
import { EventsRepository } from './events.repository';

const BATCH = 1_000;
const MAX_BATCHES = 100;

/** Every EVENT_PURGE_INTERVAL_MS, deletes events older than EVENT_RETENTION_MS whose deliveries have ended, on one instance at a time. */
@Injectable()
export class EventPurger implements PeriodicJob<number> {
  readonly name = 'purge-events';
  readonly lockKey = ADVISORY_LOCK_KEYS.purgeEvents;
  readonly intervalMs: number;
  private readonly retentionMs: number;
  /** With webhooks dispatched, an event is kept until the dispatcher has made its deliveries. */
  private readonly afterDispatch: boolean;
  private readonly logger = new Logger(EventPurger.name);

  constructor(
    private readonly events: EventsRepository,
    private readonly runner: JobRunner,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'events' | 'webhooks'>,
  ) {
    this.intervalMs = config.events.purgeIntervalMs;
    this.retentionMs = config.events.retentionMs;
    this.afterDispatch = config.webhooks.dispatchIntervalMs > 0;
    runner.schedule(this);
  }

  /** Returns how many events were purged, or null when another instance is purging. */
  runOnce(): Promise<number | null> {
    return this.runner.runNow(this);
  }

  async run(exclusively: Exclusively): Promise<number | null> {
    const purged = await repeatExclusively(exclusively, MAX_BATCHES, async (queryRunner) => {
      const deleted = await this.events.purge(queryRunner, this.retentionMs, BATCH, this.afterDispatch);
      return { count: deleted, done: deleted < BATCH };
    });
    if (purged) this.logger.log(`Purged ${purged} event(s) past their retention`);
    return purged;
  }
}
