import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Booking, Caller } from '../bookings/booking';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { type TransactionHooks, TransactionRunner } from '../database/transaction-runner';
import {
  HoldExpiredError,
  HoldNotActiveError,
  HoldNotFoundError,
  InsufficientSlotsError,
  InvalidInputError,
  MatchNotFoundError,
} from '../errors/domain-errors';
import { MatchesRepository } from '../matches/matches.repository';
import type { Hold } from './hold';
import { HoldsRepository } from './holds.repository';
import { SlotAvailability } from './slot-availability';

/** Reserve now, confirm later: held slots count against availability until confirmed, released or expired. */
@Injectable()
export class HoldsService {
  private readonly ttlMs: number;
  private readonly maxSlots: number;

  constructor(
    private readonly holds: HoldsRepository,
    private readonly matches: MatchesRepository,
    private readonly availability: SlotAvailability,
    private readonly transactions: TransactionRunner,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'holds' | 'booking'>,
  ) {
    this.ttlMs = config.holds.ttlMs;
    this.maxSlots = config.booking.maxSlotsPerBooking;
  }

  async create(caller: Caller, matchId: string, slots: number, hooks?: TransactionHooks): Promise<Hold> {
    if (slots > this.maxSlots) throw new InvalidInputError('slots', `slots must not be greater than ${this.maxSlots}`);
    return this.transactions.run('create-hold', async (queryRunner) => {
      const match = await this.matches.lockById(queryRunner, matchId, 'create-hold');
      if (!match) throw new MatchNotFoundError(matchId);
      const availableSlots = await this.availability.freeSlots(queryRunner, match, slots);
      if (availableSlots < slots) throw new InsufficientSlotsError(matchId, slots, availableSlots);
      return this.holds.insertActive(queryRunner, { matchId, customerId: caller.customerId, slots, ttlMs: this.ttlMs });
    }, { hooks });
  }

  /** A customer sees only their own holds; someone else's answers "not found". */
  async get(caller: Caller, holdId: string): Promise<Hold> {
    const hold = await this.holds.findById(holdId);
    if (!hold || (!caller.isAdmin && hold.customerId !== caller.customerId)) throw new HoldNotFoundError(holdId);
    const { expired: _expired, ...rest } = hold;
    return rest;
  }

  /**
   * Turns the hold into a confirmed booking. An expired hold answers 410 and its slots go back
   * to the match (committed before the error is raised).
   */
  async confirm(caller: Caller, holdId: string, hooks?: TransactionHooks): Promise<Booking> {
    const hold = await this.get(caller, holdId);
    // Expired is expired, whether the sweeper marked it or it is still active past its time.
    if (hold.status === 'expired') throw new HoldExpiredError(holdId);
    if (hold.status !== 'active') throw new HoldNotActiveError(holdId, hold.status, hold.bookingId);
    const outcome = await this.transactions.run('confirm-hold', async (queryRunner) => {
      await this.matches.lockById(queryRunner, hold.matchId, 'confirm-hold');
      const booking = await this.holds.confirm(queryRunner, holdId, hold.matchId, randomUUID());
      if (booking) return { kind: 'confirmed' as const, booking };
      const current = await this.holds.findById(holdId, queryRunner);
      if (current?.status === 'active' && current.expired) {
        await this.holds.expireDue(queryRunner, [hold.matchId]);
        return { kind: 'expired' as const };
      }
      return { kind: 'unchanged' as const, current };
    }, {
      // Only a confirmation is a success to record; an expiry commits its release but answers 410.
      hooks: hooks && {
        before: hooks.before,
        after: (queryRunner, outcome) =>
          (outcome as { kind: string }).kind === 'confirmed' && hooks.after
            ? hooks.after(queryRunner, (outcome as { booking: Booking }).booking)
            : Promise.resolve(),
      },
    });
    if (outcome.kind === 'confirmed') return outcome.booking;
    if (outcome.kind === 'expired') throw new HoldExpiredError(holdId);
    const current = outcome.current;
    if (!current) throw new HoldNotFoundError(holdId);
    if (current.status === 'expired') throw new HoldExpiredError(holdId);
    throw new HoldNotActiveError(holdId, current.status, current.bookingId);
  }

  /** Gives the slots back at once. Releasing a hold that is no longer active is a no-op, except a confirmed one (409). */
  async release(caller: Caller, holdId: string): Promise<void> {
    const hold = await this.get(caller, holdId);
    if (hold.status === 'confirmed') throw new HoldNotActiveError(holdId, hold.status, hold.bookingId);
    if (hold.status !== 'active') return;
    const released = await this.transactions.run('release-hold', async (queryRunner) => {
      await this.matches.lockById(queryRunner, hold.matchId, 'release-hold');
      return this.holds.release(queryRunner, holdId, hold.matchId);
    });
    if (released) return;
    const current = await this.holds.findById(holdId);
    if (current?.status === 'confirmed') throw new HoldNotActiveError(holdId, current.status, current.bookingId);
  }
}
