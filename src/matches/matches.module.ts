import { Module } from '@nestjs/common';
import { InventoryModule } from '../inventory/inventory.module';
import { MatchesController } from './matches.controller';
import { MatchesRepository } from './matches.repository';
import { MatchesService } from './matches.service';

@Module({
  imports: [InventoryModule],
  controllers: [MatchesController],
  providers: [MatchesRepository, MatchesService],
})
export class MatchesModule {}
