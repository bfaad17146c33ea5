import { type DynamicModule, Module } from '@nestjs/common';
import { LoggerModule } from 'nestjs-pino';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { DbActivityController } from './admin/db-activity.controller';
import { DbActivityRepository } from './admin/db-activity.repository';
import { AuthGuard } from './auth/auth.guard';
import { BookingsController } from './bookings/bookings.controller';
import { BookingsRepository } from './bookings/bookings.repository';
import { BookingsService } from './bookings/bookings.service';
import { Reservations } from './bookings/reservations';
import type { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { buildDataSourceOptions } from './database/data-source-options';
import { CommitOutcomes } from './database/commit-outcome';
import { ReadReplicas } from './database/read-replicas';
import { TransactionRunner } from './database/transaction-runner';
import { ProblemDetailsFilter } from './errors/problem-details.filter';
import { HealthModule } from './health/health.module';
import { HoldSweeper } from './holds/hold-sweeper';
import { IdempotencyPurger } from './idempotency/idempotency-purger';
import { IdempotencyRepository } from './idempotency/idempotency.repository';
import { IdempotencyService } from './idempotency/idempotency.service';
import { HoldsController } from './holds/holds.controller';
import { HoldsRepository } from './holds/holds.repository';
import { HoldsService } from './holds/holds.service';
import { SlotAvailability } from './holds/slot-availability';
import { LifecycleModule } from './lifecycle/lifecycle.module';
import { LocksModule } from './locks/locks.module';
import { MatchesController } from './matches/matches.controller';
import { MatchesRepository } from './matches/matches.repository';
import { MatchesService } from './matches/matches.service';
import { ROOT_LOGGER } from './observability/logging';
import { MetricsController } from './observability/metrics.controller';
import { ObservabilityModule } from './observability/observability.module';
import { RateLimitGuard } from './rate-limit/rate-limit.guard';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { RedisModule } from './redis/redis.module';
import { ReconciliationJob } from './reconciliation/reconciliation.job';

export interface AppModuleOptions {
  config: AppConfig;
  /** The database to serve from: DATABASE_URL, or the embedded server's URL. */
  databaseUrl: string;
  rootLogger?: PinoLogger;
  /** Tests capture the logs here. */
  logDestination?: DestinationStream;
}

@Module({})
export class AppModule {
  static register({ config, databaseUrl, rootLogger, logDestination }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.register(config, databaseUrl),
        ObservabilityModule.register({ rootLogger, logDestination }),
        LoggerModule.forRootAsync({
          inject: [ROOT_LOGGER],
          // The request-logging middleware is installed first of all in app.setup.ts; Nest's
          // logger writes through the same pino instance, with the request id of the request at hand.
          useFactory: (logger: PinoLogger) => ({ pinoHttp: { logger }, useExisting: true as const }),
        }),
        LifecycleModule,
        RedisModule,
        LocksModule,
        RateLimitModule,
        TypeOrmModule.forRoot({
          ...buildDataSourceOptions(config.database, databaseUrl, 'service'),
          // Fail fast at startup instead of TypeOrmModule's default of nine retries.
          retryAttempts: 0,
        }),
        HealthModule,
      ],
      controllers: [
        MatchesController,
        BookingsController,
        DbActivityController,
        HoldsController,
        ...(config.metrics.port === undefined ? [MetricsController] : []),
      ],
      providers: [
        // Global guards run in this order: writes are counted (per IP even without a valid token) before authentication.
        { provide: APP_GUARD, useClass: RateLimitGuard },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        TransactionRunner,
        CommitOutcomes,
        ReadReplicas,
        MatchesRepository,
        MatchesService,
        BookingsRepository,
        BookingsService,
        Reservations,
        DbActivityRepository,
        ReconciliationJob,
        HoldsRepository,
        HoldsService,
        SlotAvailability,
        HoldSweeper,
        IdempotencyRepository,
        IdempotencyService,
        IdempotencyPurger,
      ],
    };
  }
}
