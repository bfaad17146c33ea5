import { type DynamicModule, Module } from '@nestjs/common';
import type { DestinationStream, Logger as PinoLogger } from 'pino';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { AdminModule } from './admin/admin.module';
import { AuthGuard } from './auth/auth.guard';
import { AuthModule } from './auth/auth.module';
import { BookingsModule } from './bookings/bookings.module';
import type { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { DatabaseModule } from './database/database.module';
import { EventsModule } from './events/events.module';
import { ProblemDetailsFilter } from './errors/problem-details.filter';
import { HealthModule } from './health/health.module';
import { HoldsModule } from './holds/holds.module';
import { WaitlistModule } from './waitlist/waitlist.module';
import { JobsModule } from './jobs/jobs.module';
import { LifecycleModule } from './lifecycle/lifecycle.module';
import { LocksModule } from './locks/locks.module';
import { MatchesModule } from './matches/matches.module';
import { MetricsController } from './observability/metrics.controller';
import { ObservabilityModule } from './observability/observability.module';
import { RateLimitGuard } from './rate-limit/rate-limit.guard';
import { RateLimitModule } from './rate-limit/rate-limit.module';
import { RedisModule } from './redis/redis.module';
import { WebhooksModule } from './webhooks/webhooks.module';

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
        LifecycleModule,
        AuthModule,
        RedisModule,
        LocksModule,
        RateLimitModule,
        DatabaseModule.register(config, databaseUrl),
        JobsModule,
        HealthModule,
        MatchesModule,
        BookingsModule,
        HoldsModule,
        WaitlistModule,
        AdminModule,
        EventsModule,
        WebhooksModule,
      ],
      controllers: config.metrics.port === undefined ? [MetricsController] : [],
      providers: [
        // Global guards run in this order: writes are counted (per IP even without a valid token) before authentication.
        { provide: APP_GUARD, useClass: RateLimitGuard },
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
      ],
    };
  }
}
