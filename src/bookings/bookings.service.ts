import { type BeforeApplicationShutdown, Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { type KeysetPosition, type Page, toPage } from '../database/sql';
import { TransactionRunner } from '../database/transaction-runner';
import type { Caller } from '../auth/caller';
import { type IdempotentWrite, ReplayStoredResponse } from '../idempotency/idempotent-write';
import { SlotLedger } from '../inventory/slot-ledger';
import { BookingNotConfirmedError, BookingNotFoundError, ConcurrencyConflictError, InvalidInputError, LockTimeoutError } from '../errors/domain-errors';
import { problemTypeOf } from '../errors/problem';
import { PROBLEM_TYPES, type ProblemType } from '../errors/problem-types';
import { type BookingOutcome, Metrics } from '../observability/metrics';
import type { BookingStatus } from './booking.entity';
import type { Booking } from './booking';
import { BookingsRepository } from './bookings.repository';
import { CoalescingQueue } from './coalescing-queue';
import { type BookingRequest, Reservations } from './reservations';

/** A reservation batch takes milliseconds; one running this long waits on a lock held elsewhere. */
const STALLED_BATCH_MS = 250;

/** How many times cancel and reschedule follow a booking that a concurrent request moved. */
const MOVED_BOOKING_ATTEMPTS = 3;

export interface BookingListQuery {
  matchId?: string;
  status?: BookingStatus;
  before?: KeysetPosition;
  limit: number;
}

@Injectable()
export class BookingsService implements BeforeApplicationShutdown {
  private readonly maxSlotsPerBooking: number;
  private readonly reservationQueue: CoalescingQueue<BookingRequest, Booking>;

  constructor(
    private readonly bookings: BookingsRepository,
    private readonly ledger: SlotLedger,
    private readonly transactions: TransactionRunner,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'booking' | 'database'>,
    private readonly metrics: Metrics,
    reservations: Reservations,
  ) {
    this.maxSlotsPerBooking = config.booking.maxSlotsPerBooking;
    this.reservationQueue = new CoalescingQueue({
      maxBatch: config.booking.maxBatchSize,
      maxConcurrentBatches: config.booking.concurrentBatches,
      stalledAfterMs: STALLED_BATCH_MS,
      // Waiting in this queue replaces waiting on the row lock, and is bounded the same way.
      maxWaitMs: config.database.lockTimeoutMs,
      waitTimeoutError: () => new LockTimeoutError('Gave up waiting for the match: earlier bookings of it took longer than the lock timeout'),
      runBatch: (requests) => reservations.reserve(requests),
      spans: { name: 'booking', keyAttribute: 'booking.match_id', keysAttribute: 'booking.batch.matches' },
    });
  }

  /**
   * The shutdown drains the requests whose clients are still connected; this lets the batches of
   * the others finish too, before TypeORM's onApplicationShutdown destroys the pool under them.
   * Bounded: a waiting request gives up after the lock timeout, and a batch's statements have
   * timeouts of their own.
   */
  async beforeApplicationShutdown(): Promise<void> {
    await this.reservationQueue.whenIdle();
  }

  /**
   * Books slots of a match. Concurrent bookings coalesce into batches, each decided by one
   * reservation statement under one lock of each of its match rows (coalescing-queue.ts,
   * reservations.ts); a booking with no concurrent company runs alone, at once.
   */
  async book(caller: Caller, matchId: string, slots: number, idempotency?: IdempotentWrite): Promise<Booking> {
    if (slots > this.maxSlotsPerBooking) {
      throw new InvalidInputError('slots', `slots must not be greater than ${this.maxSlotsPerBooking}`);
    }
    try {
      const booking = await this.reservationQueue.submit(matchId, { matchId, customerId: caller.customerId, slots, ...(idempotency && { idempotency }) });
      this.metrics.bookingOutcomes.inc({ outcome: 'confirmed' });
      return booking;
    } catch (error) {
      const outcome = bookingFailureOutcome(error);
      if (outcome) this.metrics.bookingOutcomes.inc({ outcome });
      throw error;
    }
  }

  /** Idempotent: cancelling a cancelled booking answers it as it is and gives nothing back twice. */
  async cancel(caller: Caller, bookingId: string, idempotency?: IdempotentWrite): Promise<Booking> {
    const booking = await this.get(caller, bookingId);
    if (booking.status === 'cancelled') return booking;
    return this.transactions.run(
      'cancel-booking',
      async (queryRunner) => {
        // A concurrent reschedule may move the booking between a read and the lock: follow it.
        let matchId = booking.matchId;
        for (let attempt = 1; ; attempt += 1) {
          const cancelled = await this.ledger.cancelBooking(queryRunner, bookingId, matchId);
          if (cancelled) return cancelled;
          const current = await this.bookings.findById(bookingId, queryRunner);
          if (!current) throw new BookingNotFoundError(bookingId);
          if (current.status === 'cancelled' || attempt === MOVED_BOOKING_ATTEMPTS) return current;
          matchId = current.matchId;
        }
      },
      { hooks: idempotency },
    );
  }

  /**
   * Moves a booking to another match atomically. Both match rows are locked in one fixed
   * order (by id), so two opposite reschedules never deadlock.
   */
  async reschedule(caller: Caller, bookingId: string, toMatchId: string, idempotency?: IdempotentWrite): Promise<Booking> {
    const booking = await this.get(caller, bookingId);
    if (booking.status !== 'confirmed') throw new BookingNotConfirmedError(bookingId);
    if (booking.matchId === toMatchId) return booking;
    return this.transactions.run(
      'reschedule-booking',
      async (queryRunner) => {
        const moved = await this.ledger.moveBooking(queryRunner, booking, toMatchId);
        if (moved) return moved;
        // Cancelled or moved by a concurrent request since our read.
        const current = await this.bookings.findById(bookingId, queryRunner);
        if (current?.status === 'cancelled') throw new BookingNotConfirmedError(bookingId);
        throw new ConcurrencyConflictError(`Booking ${bookingId} was moved by a concurrent request; retry`);
      },
      { hooks: idempotency },
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

/** Undefined for an answer about the Idempotency-Key (a replay or a key in flight): no booking was attempted. */
function bookingFailureOutcome(error: unknown): BookingOutcome | undefined {
  if (error instanceof ReplayStoredResponse) return undefined;
  const type = problemTypeOf(error);
  const outcome = type === undefined ? undefined : (PROBLEM_TYPES[type] as ProblemType).bookingOutcome;
  return outcome === null ? undefined : (outcome ?? 'failed');
}
