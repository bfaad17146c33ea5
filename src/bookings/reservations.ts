import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import { TransactionRunner } from '../database/transaction-runner';
import { ConcurrencyConflictError, IdempotencyInFlightError, InsufficientSlotsError, MatchNotFoundError } from '../errors/domain-errors';
import { HoldsRepository } from '../holds/holds.repository';
import { IdempotencyRepository } from '../idempotency/idempotency.repository';
import { type IdempotencyClaim, ReplayStoredResponse, storedResponse } from '../idempotency/idempotency.service';
import { Metrics } from '../observability/metrics';
import type { Booking } from './booking';
import { BookingsRepository, type ReservationRequestRow, type ReservationRow, toBooking } from './bookings.repository';
import type { Settled } from './coalescing-queue';

export interface BookingRequest {
  customerId: string;
  slots: number;
  /** Present when the request carries an Idempotency-Key. */
  claim?: IdempotencyClaim;
}

const TRANSACTION = 'book-slots';

/**
 * The reservation transaction: books a batch of requests for one match (one request, or the
 * requests that coalesced while the previous batch ran) under a single lock of the match row,
 * first come, first served. Each request gets its own booking, its own idempotency record, or
 * its own error (409 when the match ran out before its turn).
 *
 * Round trips: BEGIN and SET LOCAL, then (only if some request carries an Idempotency-Key) one
 * statement that claims the keys, then the reservation statement, which takes the row lock, and
 * COMMIT. Nothing else runs while the row is locked, except when requests were refused while the
 * counter still holds expired holds: those are released and the refused requests decided again.
 */
@Injectable()
export class Reservations {
  constructor(
    private readonly transactions: TransactionRunner,
    private readonly bookings: BookingsRepository,
    private readonly holds: HoldsRepository,
    private readonly idempotencyRecords: IdempotencyRepository,
    private readonly metrics: Metrics,
  ) {}

  /** Settles every request (same order). Never rejects: a failed transaction fails each request with its error. */
  async reserve(matchId: string, requests: BookingRequest[]): Promise<Array<Settled<Booking>>> {
    this.metrics.bookingBatchSize.observe(requests.length);
    try {
      return await this.transactions.run(TRANSACTION, (queryRunner) => this.reserveInTransaction(queryRunner, matchId, requests), {
        onRetry: () => this.metrics.bookingOutcomes.inc({ outcome: 'retried' }, requests.length),
      });
    } catch (error) {
      return requests.map(() => ({ ok: false, error }));
    }
  }

  private async reserveInTransaction(queryRunner: QueryRunner, matchId: string, requests: BookingRequest[]): Promise<Array<Settled<Booking>>> {
    const outcomes: Array<Settled<Booking> | undefined> = new Array<Settled<Booking> | undefined>(requests.length).fill(undefined);
    const transactionTime = await this.claimIdempotencyKeys(queryRunner, requests, outcomes);

    const rows = requests.map((request, index) => toRequestRow(matchId, request, transactionTime, outcomes[index] === undefined));
    let open = indexesOf(outcomes, (outcome) => outcome === undefined);
    for (let round = 1; open.length > 0; round += 1) {
      const decided = await this.lockAndReserve(queryRunner, matchId, open.map((index) => rows[index]!));
      if (decided.length === 0) {
        for (const index of open) outcomes[index] = { ok: false, error: new MatchNotFoundError(matchId) };
        break;
      }
      const expectedRecords = open.filter((index, position) => decided[position]!.accepted && rows[index]!.record).length;
      if (decided[0]!.records_written !== expectedRecords) {
        // A record appeared despite the claim (a writer that took no advisory lock): the rerun replays it.
        throw new ConcurrencyConflictError('An idempotency record was written concurrently');
      }
      const refused: number[] = [];
      open.forEach((index, position) => {
        const row = decided[position]!;
        if (row.accepted) outcomes[index] = { ok: true, value: toBooking(row as Parameters<typeof toBooking>[0]) };
        else refused.push(index);
      });
      // The held counter may include holds that expired unswept: release them once, then retry the refused.
      const released = refused.length > 0 && round === 1 && decided[0]!.held_slots > 0 ? (await this.holds.expireDue(queryRunner, [matchId])).slots : 0;
      if (released === 0) {
        refused.forEach((index) => {
          const position = open.indexOf(index);
          outcomes[index] = { ok: false, error: new InsufficientSlotsError(matchId, requests[index]!.slots, decided[position]!.free_before) };
        });
        break;
      }
      open = refused;
    }
    return outcomes.map((outcome) => outcome!);
  }

  /**
   * Before the row lock: takes each key's advisory lock and looks for its committed record, in one
   * statement. A key being processed by another instance is in flight (409); a key with a record
   * is replayed. Returns the transaction's timestamp, the created_at of the
   * bookings it inserts, which the stored responses must carry.
   */
  private async claimIdempotencyKeys(queryRunner: QueryRunner, requests: BookingRequest[], outcomes: Array<Settled<Booking> | undefined>): Promise<Date | undefined> {
    // BookingsService lets one request per key into the queue, so the keys of a batch are distinct.
    const claimed = indexesOf(requests, (request) => request.claim !== undefined);
    if (claimed.length === 0) return undefined;

    const { transactionTime, claims } = await this.idempotencyRecords.claimScopes(
      queryRunner,
      claimed.map((index) => requests[index]!.claim!.scope),
    );
    claimed.forEach((index, position) => {
      const { locked, stored } = claims[position]!;
      if (!locked) outcomes[index] = { ok: false, error: new IdempotencyInFlightError(requests[index]!.claim!.scope.key) };
      else if (stored) outcomes[index] = { ok: false, error: new ReplayStoredResponse(stored) };
    });
    return transactionTime;
  }

  private async lockAndReserve(queryRunner: QueryRunner, matchId: string, rows: ReservationRequestRow[]): Promise<ReservationRow[]> {
    // The statement's time is nearly all lock wait when the match is contended.
    const stopTimer = this.metrics.rowLockWait.startTimer({ transaction: TRANSACTION });
    try {
      return await this.bookings.lockAndReserve(queryRunner, matchId, rows);
    } finally {
      stopTimer();
    }
  }
}

/** The row of one request; a request with a key also gets the record it would leave if accepted. */
function toRequestRow(matchId: string, request: BookingRequest, transactionTime: Date | undefined, open: boolean): ReservationRequestRow {
  const bookingId = randomUUID();
  const row: ReservationRequestRow = { bookingId, customerId: request.customerId, slots: request.slots };
  if (!request.claim || !open) return row;
  const { claim } = request;
  // Exactly what toBooking() makes of the inserted row: the same id, and created_at = now() of this transaction.
  const booking: Booking = { id: bookingId, matchId, customerId: request.customerId, slots: request.slots, status: 'confirmed', createdAt: transactionTime!, cancelledAt: null };
  const response = storedResponse(claim, booking);
  return { ...row, record: { endpoint: claim.scope.endpoint, key: claim.scope.key, requestHash: response.requestHash, status: response.status, body: response.body, ttlMs: claim.ttlMs } };
}

function indexesOf<T>(items: T[], predicate: (item: T) => boolean): number[] {
  return items.flatMap((item, index) => (predicate(item) ? [index] : []));
}
