import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../config/app-config';

/** The shared ioredis client, or null in single-instance mode (no REDIS_URL). */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');

/**
 * A dead Redis must fail fast instead of hanging requests: no offline queue (a command sent
 * while disconnected fails at once), no replay of unanswered commands after a reconnect, one
 * attempt per command, a command timeout, and reconnection in the background with capped backoff.
 */
export function createRedisClient(url: string, commandTimeoutMs: number, logger: Logger): Redis {
  const client = new Redis(url, {
    enableOfflineQueue: false,
    // A command written before a disconnect is not sent again after the reconnect: a lock
    // request its caller already gave up on must never take a lock later.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    lazyConnect: false,
  });
  let lastError = '';
  client.on('error', (error: Error) => {
    // ioredis emits an error per failed reconnect; log each distinct one, not hundreds.
    if (error.message !== lastError) logger.warn(`Redis: ${error.message}`);
    lastError = error.message;
  });
  client.on('ready', () => {
    if (lastError !== '') logger.log('Redis: connected again');
    lastError = '';
  });
  return client;
}

@Global()
@Module({
  providers: [
    {
      provide: REDIS_CLIENT,
      inject: [APP_CONFIG],
      useFactory: (config: AppConfig): Redis | null =>
        config.redis.url === undefined ? null : createRedisClient(config.redis.url, config.redis.commandTimeoutMs, new Logger('Redis')),
    },
  ],
  exports: [REDIS_CLIENT],
})
export class RedisModule implements OnApplicationShutdown {
  private readonly logger = new Logger(RedisModule.name);

  constructor(@Inject(REDIS_CLIENT) private readonly redis: Redis | null) {}

  /** Runs after the HTTP server has stopped (see lifecycle/graceful-shutdown.ts). */
  async onApplicationShutdown(): Promise<void> {
    if (!this.redis) return;
    try {
      await this.redis.quit();
      this.logger.log('Redis connection closed');
    } catch (error) {
      this.logger.warn(`Redis did not close cleanly: ${error instanceof Error ? error.message : String(error)}`);
      this.redis.disconnect();
    }
  }
}
