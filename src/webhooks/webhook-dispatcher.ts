import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ADVISORY_LOCK_KEYS } from '../database/advisory-locks';
import { type Exclusively, JobRunner, type PeriodicJob, repeatExclusively } from '../jobs/job-runner';
import { Metrics } from '../observability/metrics';
import { WebhooksRepository } from './webhooks.repository';

const BATCH = 500;
const MAX_BATCHES_PER_RUN = 20;
/** The oldest-pending gauge feeds alerts scraped every few tens of seconds; its aggregate need not run on every dispatch. */
const GAUGE_REFRESH_MS = 10_000;

/**
 * Every WEBHOOK_DISPATCH_INTERVAL_MS, on one instance at a time: reads the settled events after
 * its cursor in the feed (never skipping one that committed late) and makes a delivery of each
 * for every endpoint that takes its type. Sending is the relay's (webhook-relay.ts), on every
 * instance. Also counts the committed events and, at most every 10 s, reports the oldest
 * pending delivery's age.
 */
@Injectable()
export class WebhookDispatcher implements PeriodicJob<number> {
  readonly name = 'dispatch-webhooks';
  readonly lockKey = ADVISORY_LOCK_KEYS.dispatchWebhooks;
  readonly intervalMs: number;
  private gaugeRefreshedAt = 0;

  constructor(
    private readonly webhooks: WebhooksRepository,
    private readonly runner: JobRunner,
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'webhooks'>,
  ) {
    this.intervalMs = config.webhooks.dispatchIntervalMs;
    runner.schedule(this);
  }

  /** Returns how many deliveries were made, or null when another instance is dispatching. */
  runOnce(): Promise<number | null> {
    return this.runner.runNow(this);
  }

  async run(exclusively: Exclusively): Promise<number | null> {
    const deliveries = await repeatExclusively(exclusively, MAX_BATCHES_PER_RUN, async (queryRunner) => {
      const dispatched = await this.webhooks.dispatch(queryRunner, BATCH);
      for (const type of dispatched.eventTypes) this.metrics.eventsCommitted.inc({ type });
      return { count: dispatched.deliveries, done: dispatched.eventTypes.length < BATCH };
    });
    if (deliveries !== null && Date.now() - this.gaugeRefreshedAt >= GAUGE_REFRESH_MS) {
      this.gaugeRefreshedAt = Date.now();
      this.metrics.webhookOldestPending.set(await this.webhooks.oldestPendingAgeSeconds());
    }
    return deliveries;
  }
}
