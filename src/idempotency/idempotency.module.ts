import { Module } from '@nestjs/common';
import { IdempotencyInterceptor } from './idempotency.interceptor';
import { IdempotencyPurger } from './idempotency-purger';
import { IdempotencyRepository } from './idempotency.repository';
import { IdempotencyService } from './idempotency.service';

/** Idempotency-Key handling: routes opt in with @Idempotent() (idempotent.decorator.ts). */
@Module({
  providers: [IdempotencyRepository, IdempotencyService, IdempotencyInterceptor, IdempotencyPurger],
  exports: [IdempotencyRepository, IdempotencyService, IdempotencyInterceptor],
})
export class IdempotencyModule {}
