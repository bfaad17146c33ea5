import { Inject, Injectable, Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { onRequestHookHandler } from 'fastify';
import type { Server, ServerResponse } from 'node:http';
import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { destroyConnection } from '../database/connection-release';
import { ShutdownState } from './shutdown-state';

/**
 * The shutdown sequence, on SIGTERM or SIGINT:
 *  1. readiness answers 503 at once (ShutdownState);
 *  2. the instance keeps serving for SHUTDOWN_READINESS_DELAY_MS, so load balancers notice;
 *  3. it stops accepting connections, closes idle keep-alive connections, answers requests on
 *     busy ones with "Connection: close", and waits for in-flight requests, all within
 *     SHUTDOWN_GRACE_PERIOD_MS of the signal;
 *  4. it closes the application: the database pool drains, then Redis closes;
 *  5. the steps main.ts adds run in order: the embedded PostgreSQL stops (when this process
 *     started it), then the buffered spans are exported (tracing.ts; at most 2 s); exit 0.
 * If the grace period runs out, the connections of transactions still open are closed (the
 * server rolls them back), the stuck HTTP connections are dropped, and the exit code is 1.
 * Further signals during the drain are logged and ignored.
 */
@Injectable()
export class GracefulShutdown {
  private readonly logger = new Logger('Shutdown');
  private inFlightRequests = 0;
  private readonly drainedListeners = new Set<() => void>();
  private shutdown: Promise<number> | undefined;

  constructor(
    private readonly state: ShutdownState,
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'shutdown'>,
  ) {}

  /** Request hook, registered before the routes: counts in-flight requests and ends keep-alive during shutdown. */
  readonly trackRequests: onRequestHookHandler = (_request, reply, done): void => {
    const response = reply.raw;
    this.inFlightRequests += 1;
    response.once('close', () => {
      this.inFlightRequests -= 1;
      if (this.inFlightRequests === 0) for (const listener of this.drainedListeners) listener();
    });
    const writeHead = response.writeHead.bind(response) as (...args: unknown[]) => ServerResponse;
    // Decided when the answer is written, so a request that began before the signal gets it too.
    response.writeHead = ((...args: unknown[]) => {
      if (this.state.isShuttingDown && !response.headersSent) response.setHeader('Connection', 'close');
      return writeHead(...args);
    });
    done();
  };

  /** Installs the signal handlers; the process exits when the sequence ends, through `exit` (main.ts flushes the log first). */
  handleSignals(
    app: NestFastifyApplication,
    afterClose: Array<() => Promise<void>> = [],
    exit: (code: number) => void = (code) => process.exit(code),
  ): void {
    const onSignal = (signal: NodeJS.Signals): void => {
      if (this.shutdown) {
        this.logger.warn(`${signal} received again; the shutdown already in progress continues`);
        return;
      }
      void this.run(app, signal, afterClose).then(exit);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }

  /** Runs the sequence once; later calls get the same outcome. Resolves to the exit code. */
  run(app: NestFastifyApplication, reason: string, afterClose: Array<() => Promise<void>> = []): Promise<number> {
    this.shutdown ??= this.sequence(app, reason, afterClose);
    return this.shutdown;
  }

  private async sequence(app: NestFastifyApplication, reason: string, afterClose: Array<() => Promise<void>>): Promise<number> {
    const { readinessDelayMs, gracePeriodMs } = this.config.shutdown;
    const deadline = Date.now() + gracePeriodMs;
    this.state.begin();
    this.logger.log(`${reason}: readiness now answers 503; serving for ${readinessDelayMs} ms more so load balancers notice`);
    await sleep(Math.min(readinessDelayMs, Math.max(0, deadline - Date.now())));

    const server: Server = app.getHttpServer();
    server.close();
    server.closeIdleConnections();
    this.logger.log(`Stopped accepting connections; waiting for ${this.inFlightRequests} in-flight request(s)`);
    const drained = await this.waitForInFlightRequests(deadline);

    let exitCode = 0;
    if (!drained) {
      exitCode = 1;
      const open = await this.abortOpenTransactions();
      this.logger.error(
        `Grace period of ${gracePeriodMs} ms ran out with ${this.inFlightRequests} request(s) in flight; ` +
          `closed ${open} database connection(s) so the server rolls their transactions back`,
      );
      server.closeAllConnections();
    }

    try {
      await app.close(); // drains the database pool (DataSource.destroy), then closes Redis
      this.logger.log('Database pool drained and Redis closed');
    } catch (error) {
      exitCode = 1;
      this.logger.error('Closing the application failed', error instanceof Error ? error.stack : String(error));
    }
    for (const step of afterClose) {
      try {
        await step();
      } catch (error) {
        exitCode = 1;
        this.logger.error('A shutdown step failed', error instanceof Error ? error.stack : String(error));
      }
    }
    this.logger.log(`Shutdown complete; exiting with code ${exitCode}`);
    return exitCode;
  }

  private waitForInFlightRequests(deadline: number): Promise<boolean> {
    if (this.inFlightRequests === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const finish = (drained: boolean): void => {
        clearTimeout(timer);
        this.drainedListeners.delete(onDrained);
        resolve(drained);
      };
      const onDrained = (): void => finish(true);
      const timer = setTimeout(() => finish(false), Math.max(0, deadline - Date.now()));
      this.drainedListeners.add(onDrained);
    });
  }

  /** Closes the connections of query runners still checked out; PostgreSQL rolls back their transactions. */
  private async abortOpenTransactions(): Promise<number> {
    const runners = [...(this.dataSource.driver as PostgresDriver).connectedQueryRunners];
    for (const runner of runners) {
      try {
        await destroyConnection(runner, new Error('shutdown grace period expired'));
      } catch (error) {
        this.logger.error('Closing a database connection failed', error instanceof Error ? error.stack : String(error));
      }
    }
    return runners.length;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
