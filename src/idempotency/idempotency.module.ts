import { Module } from '@nestjs/common';
import { IdempotencyPurger } from './idempotency-purger';
import { IdempotencyRepository } from './idempotency.repository';
import { IdempotencyService } from './idempotency.service';

/** Idempotency-Key handling: routes opt in with @IdempotencyKey() (idempotent.decorator.ts). */
@Module({
  providers: [IdempotencyRepository, IdempotencyService, IdempotencyPurger],
  exports: [IdempotencyRepository, IdempotencyService],
})
export class IdempotencyModule {}
