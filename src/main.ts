// First of all: tracing must patch http, pg and ioredis before anything loads them.
import { shutdownTracing } from './observability/tracing';
import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import cluster from 'node:cluster';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import pino, { type Logger } from 'pino';
import { AppModule } from './app.module';
import { configureApp, createHttpAdapter } from './app.setup';
import { type AppConfig, loadConfig } from './config/app-config';
import { ConfigurationError } from './config/environment';
import { resolveDatabase, runPendingMigrations } from './database/database-setup';
import { runClusterPrimary } from './lifecycle/cluster';
import { workerLogFields } from './lifecycle/cluster-worker';
import { GracefulShutdown } from './lifecycle/graceful-shutdown';
import { stdoutLogOutput } from './observability/log-output';
import { createRootLogger } from './observability/logging';
import { NestLogger } from './observability/nest-logger';

/** Bounds the export of the last spans at shutdown: an unreachable collector must not delay the exit. */
const TRACES_FLUSH_TIMEOUT_MS = 2_000;

/** Until the configuration is known: JSON lines at the default level, to the same output as the root logger (log-output.ts). */
let rootLogger: Logger = pino({ base: { service: 'match-booking', ...workerLogFields() } }, stdoutLogOutput());

async function bootstrap(): Promise<void> {
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigurationError) {
      rootLogger.fatal(error.message);
      exitAfterFlush(1);
      return;
    }
    throw error;
  }
  rootLogger = createRootLogger(config);
  if (config.cluster.workers > 1 && cluster.isPrimary) {
    // Validated above, once: the workers fork with the same environment. See lifecycle/cluster.ts.
    await runClusterPrimary(config, rootLogger, exitAfterFlush);
    return;
  }
  const bootLog = rootLogger.child({ context: 'Bootstrap' });
  const logger = { log: (message: string) => bootLog.info(message) };

  const database = await resolveDatabase(config, logger);
  if (database.embedded || config.database.migrateOnStart) {
    // Over PostgreSQL itself when DATABASE_URL is a pooler: migrations take a session-level lock.
    await runPendingMigrations(config, config.database.directUrl ?? database.url, logger);
  }

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
  app.get(GracefulShutdown).handleSignals(app, [...(embedded?.startedHere ? [stopEmbedded] : []), flushTraces], exitAfterFlush);
  await app.listen(config.http.port, config.http.host);
  bootLog.info(`Listening on http://${config.http.host}:${config.http.port} (API docs at /docs)`);
}

/** Exits after writing the log lines still waiting for the end of this turn (log-output.ts): the reason for the exit is among them. */
function exitAfterFlush(code: number): void {
  rootLogger.flush();
  process.exit(code);
}

bootstrap().catch((error: unknown) => {
  if (error instanceof ConfigurationError) rootLogger.fatal(error.message);
  else rootLogger.fatal({ err: error }, 'The service failed to start');
  exitAfterFlush(1);
});
