import { Injectable } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import type { Match } from '../matches/match';
import { HoldsRepository } from './holds.repository';

/**
 * Free slots of a match whose row is locked. The held counter may still include holds that
 * have expired but that no sweep has released; when those are what stands in the way, they are
 * released right here, so an expired hold never blocks a booking, whether the sweeper ran or not.
 */
@Injectable()
export class SlotAvailability {
  constructor(private readonly holds: HoldsRepository) {}

  async freeSlots(queryRunner: QueryRunner, match: Match, wanted: number): Promise<number> {
    const free = match.capacity - match.bookedSlots - match.heldSlots;
    if (free >= wanted || match.heldSlots === match.liveHeldSlots) return free;
    await this.holds.expireDue(queryRunner, [match.id]);
    return match.capacity - match.bookedSlots - match.liveHeldSlots;
  }
}
