import 'reflect-metadata';
import { Logger, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { AppModule } from './app.module';
import { configureApp } from './app.setup';
import { type AppConfig, loadConfig } from './config/app-config';
import { ConfigurationError } from './config/environment';
import { resolveDatabase, runPendingMigrations } from './database/database-setup';
import { GracefulShutdown } from './lifecycle/graceful-shutdown';

const LOG_LEVELS: LogLevel[] = ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'];

async function bootstrap(): Promise<void> {
  const logger = new Logger('Bootstrap');
  let config: AppConfig;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigurationError) {
      logger.fatal(error.message);
      process.exit(1);
    }
    throw error;
  }

  const database = await resolveDatabase(config, logger);
  if (database.embedded || config.database.migrateOnStart) {
    await runPendingMigrations(config, database.url, logger);
  }

  const app = await NestFactory.create<NestExpressApplication>(
    AppModule.register({ config, databaseUrl: database.url }),
    { bodyParser: false, logger: LOG_LEVELS.slice(0, LOG_LEVELS.indexOf(config.logLevel) + 1) },
  );
  await configureApp(app, config);
  const embedded = database.embedded;
  const stopEmbedded = async (): Promise<void> => {
    await embedded?.stop();
    logger.log('Embedded PostgreSQL stopped');
  };
  app.get(GracefulShutdown).handleSignals(app, embedded?.startedHere ? [stopEmbedded] : []);
  await app.listen(config.http.port, config.http.host);
  logger.log(`Listening on http://${config.http.host}:${config.http.port} (API docs at /docs)`);
}

bootstrap().catch((error: unknown) => {
  new Logger('Bootstrap').fatal('The service failed to start', error instanceof Error ? error.stack : String(error));
  process.exit(1);
});
