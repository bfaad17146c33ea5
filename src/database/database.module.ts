import { type DynamicModule, Global, Module } from '@nestjs/common';
import { TypeOrmModule } from '@nestjs/typeorm';
import type { AppConfig } from '../config/app-config';
import { CommitOutcomes } from './commit-outcome';
import { buildDataSourceOptions } from './data-source-options';
import { ReadReplicas } from './read-replicas';
import { TransactionRunner } from './transaction-runner';

/** The connection pool (TypeORM's DataSource), the transaction runner and the read replicas, available everywhere. */
@Global()
@Module({})
export class DatabaseModule {
  static register(config: AppConfig, databaseUrl: string): DynamicModule {
    return {
      module: DatabaseModule,
      imports: [
        TypeOrmModule.forRoot({
          ...buildDataSourceOptions(config.database, databaseUrl, 'service'),
          // Fail fast at startup instead of TypeOrmModule's default of nine retries.
          retryAttempts: 0,
        }),
      ],
      providers: [TransactionRunner, CommitOutcomes, ReadReplicas],
      exports: [TransactionRunner, CommitOutcomes, ReadReplicas],
    };
  }
}
