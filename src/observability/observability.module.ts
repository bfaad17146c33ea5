import { type DynamicModule, Global, Module, type OnModuleInit } from '@nestjs/common';
import type { DestinationStream, Logger } from 'pino';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { createRootLogger, ROOT_LOGGER } from './logging';
import { Metrics } from './metrics';
import { NestLogger } from './nest-logger';
import { MetricsServer } from './metrics-server';

interface PgPoolCounts {
  totalCount: number;
  idleCount: number;
  waitingCount: number;
}

/** Logging and metrics, available everywhere. */
@Global()
@Module({})
export class ObservabilityModule implements OnModuleInit {
  /** `rootLogger`: the one main.ts made for bootstrap messages; `logDestination`: tests capture output there. */
  static register(options: { rootLogger?: Logger; logDestination?: DestinationStream } = {}): DynamicModule {
    return {
      module: ObservabilityModule,
      providers: [
        Metrics,
        MetricsServer,
        {
          provide: ROOT_LOGGER,
          inject: [APP_CONFIG],
          useFactory: (config: AppConfig) => options.rootLogger ?? createRootLogger(config, options.logDestination),
        },
        { provide: NestLogger, inject: [ROOT_LOGGER], useFactory: (logger: Logger) => new NestLogger(logger) },
      ],
      exports: [Metrics, ROOT_LOGGER, NestLogger],
    };
  }

  constructor(
    private readonly metrics: Metrics,
    private readonly dataSource: DataSource,
  ) {}

  onModuleInit(): void {
    this.metrics.registerPoolGauges(() => {
      const pool = (this.dataSource.driver as PostgresDriver).master as PgPoolCounts | undefined;
      return pool && { total: pool.totalCount, idle: pool.idleCount, waiting: pool.waitingCount };
    });
  }
}
