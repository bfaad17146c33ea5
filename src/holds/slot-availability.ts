import { Injectable } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import type { LockedMatch } from '../matches/match';
import { HoldsRepository } from './holds.repository';

/**
 * Free slots of a match whose row is locked. The held counter may still include holds that
 * have expired but that no sweep has released; when the counters say there is not enough room
 * and some slots are held, the match's expired holds are released right here, so an expired hold
 * never blocks a booking, whether the sweeper ran or not. The common case costs no query.
 */
@Injectable()
export class SlotAvailability {
  constructor(private readonly holds: HoldsRepository) {}

  async freeSlots(queryRunner: QueryRunner, match: LockedMatch, wanted: number): Promise<number> {
    const free = match.capacity - match.bookedSlots - match.heldSlots;
    if (free >= wanted || match.heldSlots === 0) return free;
    const released = await this.holds.expireDue(queryRunner, [match.id]);
    return free + released.slots;
  }
}
