import { Inject, Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import type { Caller } from '../auth/caller';
import type { Booking } from '../bookings/booking';
import { BookingsRepository } from '../bookings/bookings.repository';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { CommitOutcomes } from '../database/commit-outcome';
import { type TransactionHooks, TransactionRunner } from '../database/transaction-runner';
import { HoldExpiredError, HoldNotActiveError, HoldNotFoundError, InvalidInputError, OutcomeUnknownError } from '../errors/domain-errors';
import type { IdempotentWrite } from '../idempotency/idempotent-write';
import { SlotLedger } from '../inventory/slot-ledger';
import type { Hold } from './hold';
import { HoldsRepository } from './holds.repository';

/** Reserve now, confirm later: held slots count against availability until confirmed, released or expired. */
@Injectable()
export class HoldsService {
  private readonly ttlMs: number;
  private readonly maxSlots: number;

  constructor(
    private readonly holds: HoldsRepository,
    private readonly ledger: SlotLedger,
    private readonly transactions: TransactionRunner,
    private readonly commitOutcomes: CommitOutcomes,
    private readonly bookings: BookingsRepository,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'holds' | 'booking'>,
  ) {
    this.ttlMs = config.holds.ttlMs;
    this.maxSlots = config.booking.maxSlotsPerBooking;
  }

  /**
   * A retry of a hold that was made would hold the slots twice, so when the connection fails
   * during COMMIT the hold is looked up by its id (made here for that) before answering.
   */
  async create(caller: Caller, matchId: string, slots: number, idempotency?: IdempotentWrite): Promise<Hold> {
    if (slots > this.maxSlots) throw new InvalidInputError('slots', `slots must not be greater than ${this.maxSlots}`);
    const id = randomUUID();
    return this.commitOutcomes.resolve(
      'create-hold',
      () =>
        this.transactions.run(
          'create-hold',
          (queryRunner) => this.ledger.createHold(queryRunner, { id, matchId, customerId: caller.customerId, slots, ttlMs: this.ttlMs }),
          { hooks: idempotency },
        ),
      async () => {
        const made = await this.holds.findById(id);
        return made && withoutExpiry(made);
      },
      (cause) => new OutcomeUnknownError('hold', id, { cause }),
    );
  }

  /** A customer sees only their own holds; someone else's answers "not found". */
  async get(caller: Caller, holdId: string): Promise<Hold> {
    const hold = await this.holds.findById(holdId);
    if (!hold || (!caller.isAdmin && hold.customerId !== caller.customerId)) throw new HoldNotFoundError(holdId);
    return withoutExpiry(hold);
  }

  /**
   * Turns the hold into a confirmed booking. An expired hold answers 410 and its slots go back
   * to the match (committed before the error is raised).
   */
  async confirm(caller: Caller, holdId: string, idempotency?: IdempotentWrite): Promise<Booking> {
    const hold = await this.get(caller, holdId);
    // Expired is expired, whether the sweeper marked it or it is still active past its time.
    if (hold.status === 'expired') throw new HoldExpiredError(holdId);
    if (hold.status !== 'active') throw new HoldNotActiveError(holdId, hold.status, hold.bookingId);
    const bookingId = randomUUID();
    const work = async (queryRunner: QueryRunner): Promise<ConfirmOutcome> => {
      const booking = await this.ledger.confirmHold(queryRunner, hold, bookingId);
      if (booking) return { kind: 'confirmed' as const, booking };
      const current = await this.holds.findById(holdId, queryRunner);
      if (current?.status === 'active' && current.expired) {
        await this.ledger.releaseExpiredHolds(queryRunner, [hold.matchId]);
        return { kind: 'expired' as const };
      }
      return { kind: 'unchanged' as const, current };
    };
    const hooks: TransactionHooks | undefined = idempotency && {
      // Only a confirmation is a success to record; an expiry commits its release but answers 410.
      before: idempotency.before,
      after: (queryRunner, outcome) => {
        const confirmed = outcome as ConfirmOutcome;
        return confirmed.kind === 'confirmed' ? idempotency.after(queryRunner, confirmed.booking) : Promise.resolve();
      },
    };
    // After an unknown COMMIT the hold tells what happened: confirmed into this booking, expired, or still active (rolled back).
    const outcome = await this.commitOutcomes.resolve<ConfirmOutcome>(
      'confirm-hold',
      () => this.transactions.run('confirm-hold', work, { hooks }),
      async () => {
        const current = await this.holds.findById(holdId);
        if (current?.status === 'active') return undefined;
        if (current?.bookingId === bookingId) {
          const booking = await this.bookings.findById(bookingId);
          if (booking) return { kind: 'confirmed', booking };
        }
        return current?.status === 'expired' ? { kind: 'expired' } : { kind: 'unchanged', current };
      },
      (cause) => new OutcomeUnknownError('booking', bookingId, { cause }),
    );
    return answerConfirmation(holdId, outcome);
  }

  /** Gives the slots back at once. Releasing a hold that is no longer active is a no-op, except a confirmed one (409). */
  async release(caller: Caller, holdId: string): Promise<void> {
    const hold = await this.get(caller, holdId);
    if (hold.status === 'confirmed') throw new HoldNotActiveError(holdId, hold.status, hold.bookingId);
    if (hold.status !== 'active') return;
    const released = await this.transactions.run('release-hold', (queryRunner) => this.ledger.releaseHold(queryRunner, hold));
    if (released) return;
    const current = await this.holds.findById(holdId);
    if (current?.status === 'confirmed') throw new HoldNotActiveError(holdId, current.status, current.bookingId);
  }
}

type ConfirmOutcome =
  | { kind: 'confirmed'; booking: Booking }
  | { kind: 'expired' }
  | { kind: 'unchanged'; current: (Hold & { expired: boolean }) | undefined };

function answerConfirmation(holdId: string, outcome: ConfirmOutcome): Booking {
  if (outcome.kind === 'confirmed') return outcome.booking;
  if (outcome.kind === 'expired') throw new HoldExpiredError(holdId);
  const current = outcome.current;
  if (!current) throw new HoldNotFoundError(holdId);
  if (current.status === 'expired') throw new HoldExpiredError(holdId);
  throw new HoldNotActiveError(holdId, current.status, current.bookingId);
}

function withoutExpiry(hold: Hold & { expired: boolean }): Hold {
  const { expired: _expired, ...rest } = hold;
  return rest;
}
