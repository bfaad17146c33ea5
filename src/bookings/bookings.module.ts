import { Module } from '@nestjs/common';
import { IdempotencyModule } from '../idempotency/idempotency.module';
import { InventoryModule } from '../inventory/inventory.module';
import { BookingsController } from './bookings.controller';
import { BookingsRepository } from './bookings.repository';
import { BookingsService } from './bookings.service';
import { Reservations } from './reservations';

@Module({
  imports: [InventoryModule, IdempotencyModule],
  controllers: [BookingsController],
  providers: [BookingsRepository, BookingsService, Reservations],
  exports: [BookingsRepository],
})
export class BookingsModule {}
