// First of all: tracing must patch http, pg and ioredis before anything loads them.
import './observability/tracing';
import cluster from 'node:cluster';
import pino, { type Logger } from 'pino';
import { type AppConfig, loadConfig } from './config/app-config';
import { ConfigurationError } from './config/environment';
import { runClusterPrimary } from './lifecycle/cluster';
import { workerLogFields } from './lifecycle/cluster-worker';
import { stdoutLogOutput } from './observability/log-output';
import { createRootLogger } from './observability/logging';

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
  // Loaded here, after the primary's branch: a primary serves nothing and needs none of it.
  const { startServer } = await import('./server.js');
  await startServer(config, rootLogger, exitAfterFlush);
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
