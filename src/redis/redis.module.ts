import { Global, Inject, Logger, Module, type OnApplicationShutdown } from '@nestjs/common';
import Redis, { type RedisOptions } from 'ioredis';
import { APP_CONFIG, type AppConfig, type RedisConfig } from '../config/app-config';

/** The shared ioredis client, or null in single-instance mode (neither REDIS_URL nor REDIS_SENTINELS). */
export const REDIS_CLIENT = Symbol('REDIS_CLIENT');

/** Where to connect: a redis:// URL, or a Sentinel group whose current master ioredis asks the sentinels for. */
export type RedisTarget = string | NonNullable<RedisConfig['sentinel']>;

export function redisTarget(config: RedisConfig): RedisTarget | undefined {
  return config.url ?? config.sentinel;
}

/**
 * A dead Redis must fail fast instead of hanging requests: no offline queue (a command sent
 * while disconnected fails at once), no replay of unanswered commands after a reconnect, one
 * attempt per command, a command timeout, and reconnection in the background with capped backoff.
 */
export function createRedisClient(target: RedisTarget, commandTimeoutMs: number, logger: Logger): Redis {
  const options: RedisOptions = {
    enableOfflineQueue: false,
    // A command written before a disconnect is not sent again after the reconnect: a lock
    // request its caller already gave up on must never take a lock later.
    autoResendUnfulfilledCommands: false,
    maxRetriesPerRequest: 1,
    commandTimeout: commandTimeoutMs,
    connectTimeout: 2_000,
    retryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
    lazyConnect: false,
  };
  const client =
    typeof target === 'string'
      ? new Redis(target, options)
      : new Redis({
          ...options,
          sentinels: target.sentinels,
          name: target.name,
          password: target.password,
          sentinelPassword: target.sentinelPassword,
          // Always the master: the locks, idempotency records and rate-limit counters are written.
          role: 'master',
          // Keep asking the sentinels (they may all be restarting), but never wait long between tries.
          sentinelRetryStrategy: (attempt) => Math.min(100 * 2 ** attempt, 2_000),
          // Subscribe to +switch-master, so a failover moves the client at once, not at its next error.
          failoverDetector: true,
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
      useFactory: (config: AppConfig): Redis | null => {
        const target = redisTarget(config.redis);
        return target === undefined ? null : createRedisClient(target, config.redis.commandTimeoutMs, new Logger('Redis'));
      },
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
