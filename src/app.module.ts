import { type DynamicModule, Module } from '@nestjs/common';
import { APP_FILTER, APP_GUARD } from '@nestjs/core';
import { TypeOrmModule } from '@nestjs/typeorm';
import { AuthGuard } from './auth/auth.guard';
import { BookingsController } from './bookings/bookings.controller';
import { BookingsRepository } from './bookings/bookings.repository';
import { BookingsService } from './bookings/bookings.service';
import type { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { buildDataSourceOptions } from './database/data-source-options';
import { TransactionRunner } from './database/transaction-runner';
import { ProblemDetailsFilter } from './errors/problem-details.filter';
import { HealthModule } from './health/health.module';
import { LifecycleModule } from './lifecycle/lifecycle.module';
import { MatchesController } from './matches/matches.controller';
import { MatchesRepository } from './matches/matches.repository';
import { MatchesService } from './matches/matches.service';
import { RedisModule } from './redis/redis.module';

export interface AppModuleOptions {
  config: AppConfig;
  /** The database to serve from: DATABASE_URL, or the embedded server's URL. */
  databaseUrl: string;
}

@Module({})
export class AppModule {
  static register({ config, databaseUrl }: AppModuleOptions): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.register(config, databaseUrl),
        LifecycleModule,
        RedisModule,
        TypeOrmModule.forRoot({
          ...buildDataSourceOptions(config.database, databaseUrl, 'service'),
          // Fail fast at startup instead of TypeOrmModule's default of nine retries.
          retryAttempts: 0,
        }),
        HealthModule,
      ],
      controllers: [MatchesController, BookingsController],
      providers: [
        { provide: APP_GUARD, useClass: AuthGuard },
        { provide: APP_FILTER, useClass: ProblemDetailsFilter },
        TransactionRunner,
        MatchesRepository,
        MatchesService,
        BookingsRepository,
        BookingsService,
      ],
    };
  }
}
