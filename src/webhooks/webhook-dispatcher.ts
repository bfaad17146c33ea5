import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { ADVISORY_LOCK_KEYS } from '../database/advisory-locks';
import { type Exclusively, JobRunner, type PeriodicJob, SKIPPED } from '../jobs/job-runner';
import { Metrics } from '../observability/metrics';
import { WebhooksRepository } from './webhooks.repository';

const BATCH = 500;
const MAX_BATCHES_PER_RUN = 20;

/**
 * Every WEBHOOK_DISPATCH_INTERVAL_MS, on one instance at a time: reads the settled events after
 * its cursor in the feed (never skipping one that committed late) and makes a delivery of each
 * for every endpoint that takes its type. Sending is the relay's (webhook-relay.ts), on every
 * instance. Also counts the committed events and reports the oldest pending delivery's age.
 */
@Injectable()
export class WebhookDispatcher implements PeriodicJob<number> {
  readonly name = 'dispatch-webhooks';
  readonly lockKey = ADVISORY_LOCK_KEYS.dispatchWebhooks;
  readonly intervalMs: number;

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
    let deliveries = 0;
    for (let batch = 0; batch < MAX_BATCHES_PER_RUN; batch += 1) {
      const dispatched = await exclusively((queryRunner) => this.webhooks.dispatch(queryRunner, BATCH));
      if (dispatched === SKIPPED) return batch === 0 ? null : deliveries;
      for (const type of dispatched.eventTypes) this.metrics.eventsCommitted.inc({ type });
      deliveries += dispatched.deliveries;
      if (dispatched.eventTypes.length < BATCH) break;
    }
    this.metrics.webhookOldestPending.set(await this.webhooks.oldestPendingAgeSeconds());
    return deliveries;
  }
}
