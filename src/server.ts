import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { Logger } from 'pino';
import { AppModule } from './app.module';
import { configureApp, createHttpAdapter } from './app.setup';
import type { AppConfig } from './config/app-config';
import { prepareDatabase } from './database/database-setup';
import { GracefulShutdown } from './lifecycle/graceful-shutdown';
import { shutdownTracing } from './observability/tracing';
import { NestLogger } from './observability/nest-logger';

/** Bounds the export of the last spans at shutdown: an unreachable collector must not delay the exit. */
const TRACES_FLUSH_TIMEOUT_MS = 2_000;

/**
 * The service itself, in its process (or a cluster worker's): database and migrations, the Nest
 * application on Fastify, the shutdown sequence on signals, then listening. main.ts loads this
 * module only where it serves, so that a cluster primary never loads the application's code.
 */
export async function startServer(config: AppConfig, rootLogger: Logger, exit: (code: number) => void): Promise<void> {
  const bootLog = rootLogger.child({ context: 'Bootstrap' });
  const logger = { log: (message: string) => bootLog.info(message) };

  const database = await prepareDatabase(config, logger);

  const app = await NestFactory.create<NestFastifyApplication>(AppModule.register({ config, databaseUrl: database.url, rootLogger }), createHttpAdapter(config), {
    bodyParser: false,
    // Nest's own lines are JSON lines through the root logger, a failed start included; a failed
    // start rejects (and is logged below) instead of aborting.
    logger: new NestLogger(rootLogger),
    abortOnError: false,
  });
  await configureApp(app, config);
  const embedded = database.embedded;
  const stopEmbedded = async (): Promise<void> => {
    await embedded?.stop();
    bootLog.info('Embedded PostgreSQL stopped');
  };
  const flushTraces = async (): Promise<void> => {
    if (!(await shutdownTracing(TRACES_FLUSH_TIMEOUT_MS))) bootLog.warn(`Buffered spans not exported within ${TRACES_FLUSH_TIMEOUT_MS} ms; dropped`);
  };
  // Spans last: those of the drain and of closing the pool are exported too.
  app.get(GracefulShutdown).handleSignals(app, [...(embedded?.startedHere ? [stopEmbedded] : []), flushTraces], exit);
  await app.listen(config.http.port, config.http.host);
  bootLog.info(`Listening on http://${config.http.host}:${config.http.port} (API docs at /docs)`);
}
