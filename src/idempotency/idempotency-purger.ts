import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { TransactionRunner } from '../database/transaction-runner';
import { IdempotencyRepository } from './idempotency.repository';

const BATCH = 1_000;
const MAX_BATCHES = 100;

/** Every IDEMPOTENCY_PURGE_INTERVAL_MS, deletes expired idempotency records in batches; safe on several instances at once (SKIP LOCKED). */
@Injectable()
export class IdempotencyPurger implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(IdempotencyPurger.name);
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<unknown> | undefined;

  constructor(
    private readonly records: IdempotencyRepository,
    private readonly transactions: TransactionRunner,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'idempotency'>,
  ) {}

  onApplicationBootstrap(): void {
    const { purgeIntervalMs } = this.config.idempotency;
    if (purgeIntervalMs === 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.runOnce()
        .catch((error: unknown) => this.logger.error(`Idempotency purge failed: ${error instanceof Error ? error.message : String(error)}`))
        .finally(() => (this.running = undefined));
    }, purgeIntervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  async runOnce(): Promise<number> {
    let purged = 0;
    for (let batch = 0; batch < MAX_BATCHES; batch += 1) {
      const deleted = await this.transactions.run('purge-idempotency-keys', (queryRunner) => this.records.purgeExpired(queryRunner, BATCH));
      purged += deleted;
      if (deleted < BATCH) break;
    }
    if (purged > 0) this.logger.log(`Purged ${purged} expired idempotency record(s)`);
    return purged;
  }
}
