import { Injectable, Logger } from '@nestjs/common';
import { trace } from '@opentelemetry/api';
import { randomUUID } from 'node:crypto';
import type { QueryRunner } from 'typeorm';
import { CommitOutcomes } from '../database/commit-outcome';
import { type RunOptions, TransactionRunner } from '../database/transaction-runner';
import {
  CommitOutcomeUnknownError,
  ConcurrencyConflictError,
  CustomerLimitReachedError,
  DatabaseUnavailableError,
  InsufficientSlotsError,
  MatchNotFoundError,
  OutcomeUnknownError,
} from '../errors/domain-errors';
import { IdempotencyRepository } from '../idempotency/idempotency.repository';
import type { IdempotentWrite } from '../idempotency/idempotent-write';
import { type ReservationRequestRow, SlotLedger } from '../inventory/slot-ledger';
import { Metrics } from '../observability/metrics';
import { type Booking, toBooking } from './booking';
import { BookingsRepository } from './bookings.repository';
import type { Settled } from './coalescing-queue';
import { describeError } from '../errors/describe-error';

export interface BookingRequest {
  matchId: string;
  customerId: string;
  slots: number;
  /** Present when the request carries an Idempotency-Key. */
  idempotency?: IdempotentWrite;
}

const TRANSACTION = 'book-slots';

/** One pass over some requests of a batch: their outcomes, by index into the batch. */
interface Pass {
  outcomes: Map<number, Settled<Booking>>;
  /** Requests refused for lack of slots while their match's stored held counter (which may include expired holds) was not zero. */
  refusedWhileHeld: number[];
}

/**
 * The reservation transaction: books a batch of requests (one request, or the requests that
 * coalesced while earlier batches ran, of one match or of several) under one lock of each match
 * row, first come, first served. Each request gets its own booking, its own idempotency record,
 * or its own error (409 when its match ran out before its turn, 404 for an unknown match).
 *
 * Round trips: BEGIN; only if some request carries an Idempotency-Key, one statement that claims
 * the keys (advisory locks, committed records); the statement that locks the match rows; the
 * reservation statement; COMMIT, sent as soon as the statement's result arrives. Nothing else
 * runs while the rows are locked. The lock and the reservation cannot share a statement (see
 * RESERVE_SLOTS_SQL). (A lone statement without BEGIN would save the COMMIT round trip, but the
 * server would then commit it even after the client vanished or gave up, and no
 * idle-in-transaction timeout could free its locks.)
 *
 * Requests refused while their match's stored held counter is not zero get a second pass, which
 * releases the expired holds of those matches and decides them again.
 *
 * The row locks, the reservation statement and the release of expired holds are the slot
 * ledger's (inventory/slot-ledger.ts); this class runs them in the reservation transaction.
 *
 * A pass that fails over several matches (one match's lock timed out, say) is run again for
 * each match apart, so the error reaches only the requests of the match it belongs to.
 */
@Injectable()
export class Reservations {
  private readonly logger = new Logger(Reservations.name);

  constructor(
    private readonly transactions: TransactionRunner,
    private readonly bookings: BookingsRepository,
    private readonly ledger: SlotLedger,
    private readonly idempotencyRecords: IdempotencyRepository,
    private readonly commitOutcomes: CommitOutcomes,
    private readonly metrics: Metrics,
  ) {}

  /** Settles every request (same order). Never rejects: a failed transaction fails each of its requests with its error. */
  async reserve(requests: BookingRequest[]): Promise<Array<Settled<Booking>>> {
    this.metrics.bookingBatchSize.observe(requests.length);
    const all = requests.map((_, index) => index);
    // Known before any attempt, so that a booking whose COMMIT outcome is unknown can be looked up.
    const bookingIds = requests.map(() => randomUUID());
    const first = await this.settle(requests, all, (indexes) => this.firstPass(requests, bookingIds, indexes));
    const outcomes = first.outcomes;
    if (first.refusedWhileHeld.length > 0) {
      const again = await this.settle(requests, first.refusedWhileHeld, (indexes) => this.passAfterReleasingExpiredHolds(requests, bookingIds, indexes));
      for (const [index, outcome] of again.outcomes) outcomes.set(index, outcome);
    }
    const settled = all.map((index) => outcomes.get(index)!);
    // On the batch's span (runBatch runs in it): the webhook deliveries of these bookings carry the same ids (webhook.resource_id).
    trace.getActiveSpan()?.setAttribute('booking.ids', settled.flatMap((outcome) => (outcome.ok ? [outcome.value.id] : [])));
    return settled;
  }

  /**
   * Runs `pass` over the requests at `indexes` and settles each of them; never rejects. When the
   * pass fails and the requests are of several matches, each match's requests are passed again
   * on their own: the error may belong to one match (its lock timed out, a constraint refused
   * its row), and must not fail the others or hide an unknown match's 404. When the database
   * itself is unavailable, a rerun would only fail again, so every request gets the error.
   */
  private async settle(requests: BookingRequest[], indexes: number[], pass: (indexes: number[]) => Promise<Pass>): Promise<Pass> {
    try {
      return await pass(indexes);
    } catch (error) {
      const perMatch = groupByMatch(requests, indexes);
      if (perMatch.length < 2 || error instanceof DatabaseUnavailableError) {
        return { outcomes: new Map(indexes.map((index) => [index, { ok: false, error }])), refusedWhileHeld: [] };
      }
      this.logger.warn(`A reservation batch of ${indexes.length} requests over ${perMatch.length} matches failed (${describeError(error)}); deciding each match apart`);
      this.metrics.bookingOutcomes.inc({ outcome: 'retried' }, indexes.length);
      const passes = await Promise.all(perMatch.map((group) => this.settle(requests, group, pass)));
      return {
        outcomes: new Map(passes.flatMap((each) => [...each.outcomes])),
        refusedWhileHeld: passes.flatMap((each) => each.refusedWhileHeld),
      };
    }
  }

  private firstPass(requests: BookingRequest[], bookingIds: string[], indexes: number[]): Promise<Pass> {
    return this.inTransaction((queryRunner) => this.decide(queryRunner, requests, bookingIds, indexes, { rowsLocked: false }), {
      onRetry: () => this.metrics.bookingOutcomes.inc({ outcome: 'retried' }, indexes.length),
    });
  }

  /** The held counters may include holds that expired unswept: release them, then decide the refused again. */
  private passAfterReleasingExpiredHolds(requests: BookingRequest[], bookingIds: string[], indexes: number[]): Promise<Pass> {
    const matchIds = [...new Set(indexes.map((index) => requests[index]!.matchId))];
    return this.inTransaction(async (queryRunner) => {
      await this.ledger.lockMatches(queryRunner, matchIds, TRANSACTION);
      await this.ledger.releaseExpiredHolds(queryRunner, matchIds);
      return this.decide(queryRunner, requests, bookingIds, indexes, { rowsLocked: true });
    });
  }

  /**
   * Runs a pass in the reservation transaction. When the connection fails once COMMIT was sent,
   * the pass's decisions are known but not whether they were committed: the accepted bookings'
   * ids tell (a commit is atomic), once the database answers again.
   */
  private async inTransaction(work: (queryRunner: QueryRunner) => Promise<Pass>, options?: RunOptions): Promise<Pass> {
    let decided: Pass | undefined;
    try {
      return await this.transactions.run(TRANSACTION, async (queryRunner) => (decided = await work(queryRunner)), options);
    } catch (error) {
      if (!(error instanceof CommitOutcomeUnknownError) || decided === undefined) throw error;
      return this.afterUnknownCommit(decided, error);
    }
  }

  /**
   * A refusal, a 404 or a replay is the right answer whether or not the transaction committed
   * (the decision was made under the row lock, and a rollback leaves the rows as they were
   * then). An accepted booking is answered as it really ended: 201 when it exists, a plain 503
   * (a retry is safe) when the transaction rolled back, and OutcomeUnknownError, which names
   * the booking, when the database cannot be asked in time.
   */
  private async afterUnknownCommit(pass: Pass, error: CommitOutcomeUnknownError): Promise<Pass> {
    const acceptedIds = [...pass.outcomes.values()].flatMap((outcome) => (outcome.ok ? [outcome.value.id] : []));
    if (acceptedIds.length === 0) return pass;
    const check = await this.commitOutcomes.check(TRANSACTION, async () => {
      const existing = await this.bookings.existingIds(acceptedIds);
      return existing.length > 0 ? existing : undefined;
    });
    if (check.found === 'committed') return pass;
    const outcomes = new Map(pass.outcomes);
    for (const [index, outcome] of pass.outcomes) {
      if (!outcome.ok) continue;
      const failure =
        check.found === 'rolled_back'
          ? new DatabaseUnavailableError('The booking rolled back when the database connection failed during its COMMIT', { cause: error })
          : new OutcomeUnknownError('booking', outcome.value.id, { cause: error });
      outcomes.set(index, { ok: false, error: failure });
    }
    return { outcomes, refusedWhileHeld: check.found === 'rolled_back' ? pass.refusedWhileHeld : [] };
  }

  /** Claims the keys of the requests that carry one, then locks the match rows (unless done) and runs the reservation statement for the rest. */
  private async decide(
    queryRunner: QueryRunner,
    requests: BookingRequest[],
    bookingIds: string[],
    indexes: number[],
    { rowsLocked }: { rowsLocked: boolean },
  ): Promise<Pass> {
    const outcomes = new Map<number, Settled<Booking>>();
    const transactionTime = await this.claimIdempotencyKeys(queryRunner, requests, indexes, outcomes);
    const open = indexes.filter((index) => !outcomes.has(index));
    if (open.length === 0) return { outcomes, refusedWhileHeld: [] };

    const rows = open.map((index) => toRequestRow(requests[index]!, bookingIds[index]!, transactionTime));
    if (!rowsLocked) await this.ledger.lockMatches(queryRunner, [...new Set(rows.map((row) => row.matchId))], TRANSACTION);
    const decided = await this.ledger.reserve(queryRunner, rows);
    if (decided[0]!.records_written !== rows.filter((row, position) => row.record && decided[position]!.accepted).length) {
      // A record appeared despite the claim (a writer that took no advisory lock): the rerun replays it.
      throw new ConcurrencyConflictError('An idempotency record was written concurrently');
    }
    const refusedWhileHeld: number[] = [];
    open.forEach((index, position) => {
      const row = decided[position]!;
      const { matchId, slots } = requests[index]!;
      if (row.accepted === null) {
        outcomes.set(index, { ok: false, error: new MatchNotFoundError(matchId) });
      } else if (row.accepted) {
        outcomes.set(index, { ok: true, value: toBooking(row as Parameters<typeof toBooking>[0]) });
      } else if (row.customer_limit !== null) {
        outcomes.set(index, { ok: false, error: new CustomerLimitReachedError(matchId, row.customer_limit, row.customer_slots_before!, slots) });
      } else {
        outcomes.set(index, { ok: false, error: new InsufficientSlotsError(matchId, slots, row.free_before!) });
        if (row.stored_held_slots! > 0) refusedWhileHeld.push(index);
      }
    });
    return { outcomes, refusedWhileHeld };
  }

  /**
   * Before the row lock: takes each key's advisory lock and looks for its committed record, in one
   * statement. A key being processed by another instance is in flight (409); a key with a record
   * is replayed. Returns the transaction's timestamp, the created_at of the
   * bookings it inserts, which the stored responses must carry.
   */
  private async claimIdempotencyKeys(
    queryRunner: QueryRunner,
    requests: BookingRequest[],
    indexes: number[],
    outcomes: Map<number, Settled<Booking>>,
  ): Promise<Date | undefined> {
    // IdempotencyService lets one request per key run in an instance, so the keys of a batch are distinct.
    const claimed = indexes.filter((index) => requests[index]!.idempotency !== undefined);
    if (claimed.length === 0) return undefined;

    const { transactionTime, claims } = await this.idempotencyRecords.claimScopes(
      queryRunner,
      claimed.map((index) => requests[index]!.idempotency!.scope),
    );
    claimed.forEach((index, position) => {
      const settled = requests[index]!.idempotency!.settledBy(claims[position]!);
      if (settled) outcomes.set(index, { ok: false, error: settled });
    });
    return transactionTime;
  }
}

function groupByMatch(requests: BookingRequest[], indexes: number[]): number[][] {
  const groups = new Map<string, number[]>();
  for (const index of indexes) {
    const matchId = requests[index]!.matchId;
    groups.set(matchId, [...(groups.get(matchId) ?? []), index]);
  }
  return [...groups.values()];
}

/** The row of one request; a request with a key also gets the record it would leave if accepted. */
function toRequestRow(request: BookingRequest, bookingId: string, transactionTime: Date | undefined): ReservationRequestRow {
  const { matchId } = request;
  const row: ReservationRequestRow = { matchId, bookingId, customerId: request.customerId, slots: request.slots };
  const { idempotency } = request;
  if (!idempotency) return row;
  // Exactly what toBooking() makes of the inserted row: the same id, and created_at = now() of this transaction.
  const booking: Booking = { id: bookingId, matchId, customerId: request.customerId, slots: request.slots, status: 'confirmed', createdAt: transactionTime!, cancelledAt: null };
  const { requestHash, status, body } = idempotency.recordOf(booking);
  return { ...row, record: { endpoint: idempotency.scope.endpoint, key: idempotency.scope.key, requestHash, status, body, ttlMs: idempotency.ttlMs } };
}
