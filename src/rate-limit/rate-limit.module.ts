import { Module } from '@nestjs/common';
import { ThrottlerModule } from '@nestjs/throttler';
import { Authenticator } from '../auth/authenticator';
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
      inject: [APP_CONFIG, RateLimitStorage, Authenticator],
      useFactory: (config: AppConfig, storage: RateLimitStorage, authenticator: Authenticator) => ({
        ...rateLimitOptions(config.rateLimit, authenticator),
        storage,
      }),
    }),
  ],
})
export class RateLimitModule {}
