import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { type KeysetPosition, type Page, toPage } from '../database/sql';
import { type TransactionHooks, TransactionRunner } from '../database/transaction-runner';
import {
  BookingNotConfirmedError,
  BookingNotFoundError,
  ConcurrencyConflictError,
  DatabaseUnavailableError,
  InsufficientSlotsError,
  InvalidInputError,
  LockTimeoutError,
  MatchNotFoundError,
} from '../errors/domain-errors';
import { type BookingOutcome, Metrics } from '../observability/metrics';
import { SlotAvailability } from '../holds/slot-availability';
import { MatchesRepository } from '../matches/matches.repository';
import type { BookingStatus } from './booking.entity';
import type { Booking, Caller } from './booking';
import { BookingsRepository } from './bookings.repository';

/** How many times cancel and reschedule follow a booking that a concurrent request moved. */
const MOVED_BOOKING_ATTEMPTS = 3;

export interface BookingListQuery {
  matchId?: string;
  status?: BookingStatus;
  before?: KeysetPosition;
  limit: number;
}

@Injectable()
export class BookingsService {
  private readonly maxSlotsPerBooking: number;

  constructor(
    private readonly bookings: BookingsRepository,
    private readonly matches: MatchesRepository,
    private readonly transactions: TransactionRunner,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'booking'>,
    private readonly metrics: Metrics,
    private readonly availability: SlotAvailability,
  ) {
    this.maxSlotsPerBooking = config.booking.maxSlotsPerBooking;
  }

  /**
   * The reservation: lock the match row, read availability under the lock, then count the
   * slots and insert the booking. Concurrent bookings of one match queue on the row lock, so
   * each one sees the counter its predecessor committed.
   */
  async book(caller: Caller, matchId: string, slots: number, hooks?: TransactionHooks): Promise<Booking> {
    if (slots > this.maxSlotsPerBooking) {
      throw new InvalidInputError('slots', `slots must not be greater than ${this.maxSlotsPerBooking}`);
    }
    try {
      const booking = await this.transactions.run(
        'book-slots',
        async (queryRunner) => {
          const match = await this.matches.lockById(queryRunner, matchId, 'book-slots');
          if (!match) throw new MatchNotFoundError(matchId);
          const availableSlots = await this.availability.freeSlots(queryRunner, match, slots);
          if (availableSlots < slots) throw new InsufficientSlotsError(matchId, slots, availableSlots);
          return this.bookings.insertConfirmed(queryRunner, { matchId, customerId: caller.customerId, slots });
        },
        { onRetry: () => this.metrics.bookingOutcomes.inc({ outcome: 'retried' }), hooks },
      );
      this.metrics.bookingOutcomes.inc({ outcome: 'confirmed' });
      return booking;
    } catch (error) {
      this.metrics.bookingOutcomes.inc({ outcome: bookingFailureOutcome(error) });
      throw error;
    }
  }

  /** Idempotent: cancelling a cancelled booking answers it as it is and gives nothing back twice. */
  async cancel(caller: Caller, bookingId: string, hooks?: TransactionHooks): Promise<Booking> {
    const booking = await this.get(caller, bookingId);
    if (booking.status === 'cancelled') return booking;
    return this.transactions.run(
      'cancel-booking',
      async (queryRunner) => {
        // A concurrent reschedule may move the booking between a read and the lock: follow it.
        let matchId = booking.matchId;
        for (let attempt = 1; ; attempt += 1) {
          // Lock order everywhere: match rows first (by id), then their bookings.
          await this.matches.lockById(queryRunner, matchId, 'cancel-booking');
          const cancelled = await this.bookings.cancelConfirmed(queryRunner, bookingId, matchId);
          if (cancelled) return cancelled;
          const current = await this.bookings.findById(bookingId, queryRunner);
          if (!current) throw new BookingNotFoundError(bookingId);
          if (current.status === 'cancelled' || attempt === MOVED_BOOKING_ATTEMPTS) return current;
          matchId = current.matchId;
        }
      },
      { hooks },
    );
  }

  /**
   * Moves a booking to another match atomically. Both match rows are locked in one fixed
   * order (by id), so two opposite reschedules never deadlock.
   */
  async reschedule(caller: Caller, bookingId: string, toMatchId: string, hooks?: TransactionHooks): Promise<Booking> {
    const booking = await this.get(caller, bookingId);
    if (booking.status !== 'confirmed') throw new BookingNotConfirmedError(bookingId);
    if (booking.matchId === toMatchId) return booking;
    return this.transactions.run(
      'reschedule-booking',
      async (queryRunner) => {
        const fromMatchId = booking.matchId;
        const locked = await this.matches.lockManyById(queryRunner, [fromMatchId, toMatchId], 'reschedule-booking');
        const target = locked.get(toMatchId);
        if (!target) throw new MatchNotFoundError(toMatchId);
        const availableSlots = await this.availability.freeSlots(queryRunner, target, booking.slots);
        if (availableSlots < booking.slots) throw new InsufficientSlotsError(toMatchId, booking.slots, availableSlots);
        const moved = await this.bookings.moveConfirmed(queryRunner, bookingId, fromMatchId, toMatchId);
        if (moved) return moved;
        // Cancelled or moved by a concurrent request since our read.
        const current = await this.bookings.findById(bookingId, queryRunner);
        if (current?.status === 'cancelled') throw new BookingNotConfirmedError(bookingId);
        throw new ConcurrencyConflictError(`Booking ${bookingId} was moved by a concurrent request; retry`);
      },
      { hooks },
    );
  }

  /** A customer sees only their own bookings; someone else's answers "not found", not "forbidden". */
  async get(caller: Caller, bookingId: string): Promise<Booking> {
    const booking = await this.bookings.findById(bookingId);
    if (!booking || (!caller.isAdmin && booking.customerId !== caller.customerId)) {
      throw new BookingNotFoundError(bookingId);
    }
    return booking;
  }

  async list(caller: Caller, query: BookingListQuery): Promise<Page<Booking>> {
    const rows = await this.bookings.list({
      ...query,
      ...(caller.isAdmin ? {} : { customerId: caller.customerId }),
      limit: query.limit + 1,
    });
    return toPage(rows, query.limit, (row) => row.booking);
  }
}

function bookingFailureOutcome(error: unknown): BookingOutcome {
  if (error instanceof InsufficientSlotsError) return 'insufficient_slots';
  if (error instanceof MatchNotFoundError) return 'match_not_found';
  if (error instanceof LockTimeoutError) return 'lock_timeout';
  if (error instanceof DatabaseUnavailableError || error instanceof ConcurrencyConflictError) return 'unavailable';
  return 'failed';
}
