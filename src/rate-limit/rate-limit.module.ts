import { Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { rateLimitOptions } from './rate-limit.guard';
import { RateLimitStorage } from './rate-limit.storage';

@Module({ providers: [RateLimitStorage], exports: [RateLimitStorage] })
class RateLimitStorageModule {}

/**
 * Per-customer and per-IP limits on writes (see rate-limit.guard.ts), counted in Redis or in
 * memory (rate-limit.storage.ts). The guard itself is registered in AppModule, before
 * AuthGuard, because global guards run in the order they are provided.
 */
@Module({
  imports: [
    ThrottlerModule.forRootAsync({
      imports: [RateLimitStorageModule],
      inject: [APP_CONFIG, RateLimitStorage],
      useFactory: (config: AppConfig, storage: RateLimitStorage) => ({
        ...rateLimitOptions(config.rateLimit, config.auth.jwtSecret),
        storage,
      }),
    }),
  ],
})
export class RateLimitModule {}
