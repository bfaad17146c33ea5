import { Module } from '@nestjs/common';
import { BookingsModule } from '../bookings/bookings.module';
import { IdempotencyModule } from '../idempotency/idempotency.module';
import { InventoryModule } from '../inventory/inventory.module';
import { HoldSweeper } from './hold-sweeper';
import { HoldsController } from './holds.controller';
import { HoldsRepository } from './holds.repository';
import { HoldsService } from './holds.service';

@Module({
  imports: [InventoryModule, IdempotencyModule, BookingsModule],
  controllers: [HoldsController],
  providers: [HoldsRepository, HoldsService, HoldSweeper],
})
export class HoldsModule {}
