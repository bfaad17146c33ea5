import type { INestApplication, Logger } from '@nestjs/common';

/**
 * On SIGTERM or SIGINT: close the application (HTTP server, then the database pool), run the
 * extra cleanup steps (the embedded PostgreSQL), and exit. A second signal while shutting down
 * is logged and ignored.
 */
export function handleShutdownSignals(
  app: INestApplication,
  logger: Logger,
  afterClose: Array<() => Promise<void>> = [],
): void {
  let shuttingDown = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (shuttingDown) {
      logger.warn(`${signal} received again; shutdown is already in progress`);
      return;
    }
    shuttingDown = true;
    logger.log(`${signal} received; shutting down`);
    void shutDown(app, logger, afterClose).then((exitCode) => process.exit(exitCode));
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

async function shutDown(app: INestApplication, logger: Logger, afterClose: Array<() => Promise<void>>): Promise<number> {
  let exitCode = 0;
  try {
    await app.close();
    logger.log('HTTP server closed and database pool drained');
  } catch (error) {
    exitCode = 1;
    logger.error('Closing the application failed', error instanceof Error ? error.stack : String(error));
  }
  for (const step of afterClose) {
    try {
      await step();
    } catch (error) {
      exitCode = 1;
      logger.error('A shutdown step failed', error instanceof Error ? error.stack : String(error));
    }
  }
  return exitCode;
}
