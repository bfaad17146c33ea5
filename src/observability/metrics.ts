import { Injectable } from '@nestjs/common';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { clusterWorker } from '../lifecycle/cluster-worker';

export const PROMETHEUS_CONTENT_TYPE = Registry.PROMETHEUS_CONTENT_TYPE;

export type BookingOutcome = 'confirmed' | 'insufficient_slots' | 'customer_limit_reached' | 'match_not_found' | 'lock_timeout' | 'retried' | 'unavailable' | 'outcome_unknown' | 'failed';

/**
 * Every Prometheus metric of the service, on a registry of its own (so several application
 * instances in one process, as in tests, do not collide).
 *
 * In cluster mode GET /metrics answers the sum over the workers (lifecycle/cluster.ts): counters
 * and histograms add up, and so do gauges unless they say otherwise (`aggregator`). Figures
 * that describe the database rather than the worker ("at the last reconciliation", a replica's
 * lag) take the largest worker's value: whichever worker last ran the job, or saw the worst.
 */
@Injectable()
export class Metrics {
  readonly registry = new Registry();

  readonly httpRequestDuration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by route template and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly bookingOutcomes = new Counter({
    name: 'booking_outcomes_total',
    help: 'Booking requests by outcome (retried counts reruns after a deadlock or serialization failure)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly bookingBatchSize = new Histogram({
    name: 'booking_batch_size',
    help: 'Booking requests of one match decided together in one reservation transaction (coalesced while the previous batch ran)',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  });

  readonly transactionDuration = new Histogram({
    name: 'db_transaction_duration_seconds',
    help: 'Duration of database transactions, from BEGIN to COMMIT or ROLLBACK',
    labelNames: ['transaction', 'result'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly slowTransactions = new Counter({
    name: 'db_slow_transactions_total',
    help: 'Transactions that took longer than DATABASE_SLOW_TRANSACTION_MS',
    labelNames: ['transaction'] as const,
    registers: [this.registry],
  });

  readonly commitOutcomeUnknown = new Counter({
    name: 'db_commit_outcome_unknown_total',
    help: 'Transactions whose connection failed after COMMIT was sent, so that they may or may not have committed',
    labelNames: ['transaction'] as const,
    registers: [this.registry],
  });

  readonly commitOutcomeChecks = new Counter({
    name: 'db_commit_outcome_checks_total',
    help: 'Look-ups after an unknown COMMIT outcome, by what they found: committed, rolled_back, or unknown (the database did not answer in time)',
    labelNames: ['transaction', 'found'] as const,
    registers: [this.registry],
  });

  readonly reads = new Counter({
    name: 'db_stale_tolerant_reads_total',
    help: 'Reads that may be a little stale (match lists and availability), by where they were served',
    labelNames: ['served_by'] as const,
    registers: [this.registry],
  });

  readonly replicaLag = new Gauge({
    name: 'db_replica_lag_seconds',
    help: 'Replay lag of each read replica at its last check',
    labelNames: ['replica'] as const,
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly rowLockWait = new Histogram({
    name: 'db_row_lock_wait_seconds',
    help: 'Time spent acquiring match row locks (SELECT ... FOR UPDATE), per transaction kind',
    labelNames: ['transaction'] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 3],
    registers: [this.registry],
  });

  readonly transactionRetries = new Counter({
    name: 'db_transaction_retries_total',
    help: 'Transactions run again after a deadlock (40P01) or serialization failure (40001)',
    labelNames: ['transaction', 'reason'] as const,
    registers: [this.registry],
  });

  readonly releaseFailures = new Counter({
    name: 'db_query_runner_release_failures_total',
    help: 'QueryRunner releases that threw',
    labelNames: ['transaction'] as const,
    registers: [this.registry],
  });

  readonly lockAcquisitions = new Counter({
    name: 'lock_acquire_total',
    help: 'Distributed lock acquisitions by outcome (acquired, contended, error)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly lockReleases = new Counter({
    name: 'lock_release_total',
    help: 'Distributed lock releases by outcome (released, not_owner, failed)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly lockReleaseFailures = new Counter({
    name: 'lock_release_failures_total',
    help: 'Distributed lock releases that failed, by reason (not_owner, connection, timeout, error)',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  readonly counterDriftMatches = new Gauge({
    name: 'booking_counter_drift_matches',
    help: 'Matches whose booked_slots differs from the sum of their confirmed bookings, at the last reconciliation',
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly counterDriftSlots = new Gauge({
    name: 'booking_counter_drift_slots',
    help: 'Sum of |booked_slots - confirmed slots| over all matches, at the last reconciliation',
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly waitlistOfferMismatches = new Gauge({
    name: 'waitlist_offer_mismatches',
    help: 'Waitlist entries that disagree with the hold of their offer, at the last reconciliation',
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly waitlistWaitingEntries = new Gauge({
    name: 'waitlist_waiting_entries',
    help: 'Waitlist entries waiting for an offer, over all matches, at the last reconciliation',
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly eventsCommitted = new Counter({
    name: 'events_committed_total',
    help: 'Events committed, by type, counted as the webhook dispatcher reads them from the feed',
    labelNames: ['type'] as const,
    registers: [this.registry],
  });

  readonly webhookDeliveries = new Counter({
    name: 'webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome: delivered (2xx), retried (to be sent again), failed (no retry left)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  readonly webhookAttemptDuration = new Histogram({
    name: 'webhook_attempt_duration_seconds',
    help: 'Duration of one webhook delivery attempt, from resolving the address to the answer or the timeout',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly webhookDeliveryLag = new Histogram({
    name: 'webhook_delivery_lag_seconds',
    help: 'From an event being written to its delivery being answered with a 2xx',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 3600, 86400],
    registers: [this.registry],
  });

  readonly webhookOldestPending = new Gauge({
    name: 'webhook_oldest_pending_delivery_seconds',
    help: 'Age of the oldest webhook delivery not yet delivered nor failed, refreshed by the dispatching instance at most every 10 s',
    aggregator: 'max',
    registers: [this.registry],
  });

  readonly jobRuns = new Counter({
    name: 'booking_job_runs_total',
    help: 'Runs of the periodic jobs by job and result (completed, skipped: another instance held the lock, failed)',
    labelNames: ['job', 'result'] as const,
    registers: [this.registry],
  });

  readonly jobDuration = new Histogram({
    name: 'booking_job_duration_seconds',
    help: 'Duration of the periodic jobs, by job',
    labelNames: ['job'] as const,
    buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 2.5, 10, 60],
    registers: [this.registry],
  });

  readonly rateLimitedRequests = new Counter({
    name: 'rate_limited_requests_total',
    help: 'Writes refused with 429 by limit (customer, ip)',
    labelNames: ['limit'] as const,
    registers: [this.registry],
  });

  readonly rateLimitFallbacks = new Counter({
    name: 'rate_limit_memory_fallbacks_total',
    help: 'Writes whose rate-limit hit was counted in memory because Redis failed (limits then hold per instance)',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    clusterWorker?.serveRegistry(this.registry);
  }

  /** What GET /metrics answers: this process's registry, or in a cluster worker the whole instance's, summed by the primary. */
  exposition(): Promise<string> {
    return clusterWorker ? clusterWorker.instanceMetrics() : this.registry.metrics();
  }

  /** Pool gauges read at scrape time from a source such as pg-pool. */
  registerPoolGauges(read: () => { total: number; idle: number; waiting: number } | undefined): void {
    const gauge = (name: string, help: string, pick: (pool: { total: number; idle: number; waiting: number }) => number) =>
      new Gauge({
        name,
        help,
        registers: [this.registry],
        collect() {
          const pool = read();
          this.set(pool ? pick(pool) : 0);
        },
      });
    gauge('db_pool_connections_total', 'Connections open in the pool', (pool) => pool.total);
    gauge('db_pool_connections_idle', 'Idle connections in the pool', (pool) => pool.idle);
    gauge('db_pool_waiting_clients', 'Requests waiting for a pooled connection', (pool) => pool.waiting);
  }
}
