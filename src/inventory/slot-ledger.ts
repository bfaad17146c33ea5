import { Inject, Injectable } from '@nestjs/common';
import type { QueryRunner } from 'typeorm';
import { type Booking, BOOKING_COLUMNS, BOOKING_FIELDS, type BookingRow, toBooking } from '../bookings/booking';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { queryPreparedRows, queryRows, statementName } from '../database/sql';
import {
  CapacityBelowBookedError,
  CustomerLimitReachedError,
  InsufficientSlotsError,
  InvalidInputError,
  MatchNotFoundError,
  SlotsAvailableError,
  WaitlistEntryExistsError,
} from '../errors/domain-errors';
import { bookingJson, holdJson, insertEvents } from '../events/event-sql';
import { type Hold, HOLD_COLUMNS, type HoldRow, toHold } from '../holds/hold';
import type { HoldStatus } from '../holds/hold.entity';
import { Metrics } from '../observability/metrics';
import type { WaitlistStatus } from '../waitlist/waitlist-entry.entity';
import { customerSlotsSql, freeSlots, type LockedMatch } from './slot-counters';
import { toWaitlistEntry, type WaitlistEntry, type WaitlistEntryRow } from '../waitlist/waitlist-entry';
import { closeOffersSql, ENTRY_STATUS_OF_HOLD_SQL, JOIN_LINE_SQL, LEAVE_LINE_SQL, OFFER_FREED_SLOTS_SQL } from './waitlist-sql';

/**
 * Locks match rows, in id order like every multi-row lock here, and reads their counters: the
 * first statement of every write of a match (the hold sweep skips locked rows instead). The
 * counters are changed by later statements of the transaction, whose snapshots are taken after
 * the lock is held (see RESERVE_SLOTS_SQL for why that matters).
 */
export const LOCK_MATCHES_SQL =
  'SELECT id, capacity, booked_slots, held_slots, max_slots_per_customer, waiting_entries FROM matches WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE';

/** One booking request of a reservation batch; `record` is its idempotency record, written only if it is accepted. */
export interface ReservationRequestRow {
  matchId: string;
  bookingId: string;
  customerId: string;
  slots: number;
  record?: { endpoint: string; key: string; requestHash: string; status: number; body: unknown; ttlMs: number };
}

/**
 * The decision on one request, with its booking when accepted (the booking columns are null
 * otherwise). `accepted` is null when the match does not exist.
 */
export interface ReservationRow extends Nullable<Omit<BookingRow, 'position_at'>> {
  accepted: boolean | null;
  /** Free slots of the match when this request's turn came, by the stored held counter. */
  free_before: number | null;
  /** The match's stored held counter, which may include expired holds. */
  stored_held_slots: number | null;
  /** Refused because the customer would pass the match's per-customer limit: the limit, and the customer's slots before this request. */
  customer_limit: number | null;
  customer_slots_before: number | null;
  /** Idempotency records the statement wrote, over the whole batch. */
  records_written: number;
}

type Nullable<T> = { [K in keyof T]: T[K] | null };

/**
 * The reservation of a batch of requests (of one match or of many), in one statement, run right
 * after LOCK_MATCHES_SQL has locked the batch's match rows:
 * - read the locked rows' counters (no slot is free while the match has waitlist entries waiting:
 *   free slots are the line's);
 * - decide each match's requests first come, first served: each takes its slots if they are
 *   still free (a request for 3 slots may be refused while a later one for 1 slot is served)
 *   and, on a match with a per-customer limit, if its customer's slots (confirmed bookings, live
 *   holds, and what this batch already gave the customer) stay within the limit;
 * - add the accepted slots to the counters, insert the accepted bookings (ids made by the caller),
 *   their booking.confirmed events, and the idempotency records of the accepted requests that
 *   carry a key.
 * The row locks must come from a statement of their own, never from a FOR UPDATE in this one:
 * under READ COMMITTED a statement's snapshot is taken before it waits for a lock, and when the
 * lock holder commits lower counters (a cancellation, a released hold), FOR UPDATE would decide
 * with the new row while the UPDATE below builds its new row from the snapshot's older, higher
 * counters, and the CHECK constraint would refuse it (a spurious 500). A statement that starts
 * once the locks are held reads the current row and writes from it.
 * $1..$4 per request: match id, booking id, customer id, slots; $5..$10 per request the
 * idempotency record's endpoint, key, request hash, status, body and ttl (null when it has none).
 * The CHECK constraint on matches refuses overbooking even if this logic were wrong.
 */
export const RESERVE_SLOTS_SQL = `WITH RECURSIVE
requests AS MATERIALIZED (
  SELECT r.*, row_number() OVER (PARTITION BY r.match_id ORDER BY r.position) AS turn
    FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[]) WITH ORDINALITY AS r(match_id, booking_id, customer_id, slots, position)
),
locked AS MATERIALIZED (
  SELECT id, CASE WHEN waiting_entries > 0 THEN 0 ELSE capacity - booked_slots - held_slots END AS free_slots,
         held_slots, max_slots_per_customer AS customer_limit FROM matches
   WHERE id IN (SELECT match_id FROM requests)
),
customer_slots AS MATERIALIZED (
  SELECT c.match_id, c.customer_id, ${customerSlotsSql('c.match_id', 'c.customer_id')} AS slots
    FROM (SELECT DISTINCT match_id, customer_id FROM requests) c
    JOIN locked l ON l.id = c.match_id AND l.customer_limit IS NOT NULL
),
turns AS (
  SELECT r.*, l.customer_limit, s.slots AS customer_slots_at_start
    FROM requests r JOIN locked l ON l.id = r.match_id
    LEFT JOIN customer_slots s ON s.match_id = r.match_id AND s.customer_id = r.customer_id
),
decided (match_id, turn, position, booking_id, customer_id, slots, accepted, free_after, taken, customer_limit, customer_slots_before) AS (
  SELECT id, 0::bigint, 0::bigint, NULL::uuid, NULL::text, 0, false, free_slots, '{}'::jsonb, NULL::int, NULL::bigint FROM locked
  UNION ALL
  SELECT t.match_id, t.turn, t.position, t.booking_id, t.customer_id, t.slots, o.accepted,
         CASE WHEN o.accepted THEN d.free_after - t.slots ELSE d.free_after END,
         -- what this batch gave each customer so far, kept only on matches with a limit
         CASE WHEN o.accepted AND t.customer_limit IS NOT NULL
              THEN jsonb_set(d.taken, ARRAY[t.customer_id], to_jsonb(o.before - t.customer_slots_at_start + t.slots)) ELSE d.taken END,
         t.customer_limit, o.before
    FROM decided d JOIN turns t ON t.match_id = d.match_id AND t.turn = d.turn + 1
   CROSS JOIN LATERAL (
     SELECT t.customer_slots_at_start + COALESCE((d.taken->>t.customer_id)::bigint, 0) AS before
   ) c
   CROSS JOIN LATERAL (
     SELECT t.slots <= d.free_after AND (t.customer_limit IS NULL OR c.before + t.slots <= t.customer_limit) AS accepted, c.before
   ) o
),
accepted AS MATERIALIZED (SELECT * FROM decided WHERE accepted),
counted AS (
  UPDATE matches SET booked_slots = booked_slots + totals.slots
    FROM (SELECT match_id, SUM(slots)::int AS slots FROM accepted GROUP BY match_id) totals
   WHERE matches.id = totals.match_id
),
inserted AS (
  INSERT INTO bookings (id, match_id, customer_id, slots)
  SELECT booking_id, match_id, customer_id, slots FROM accepted
  RETURNING ${BOOKING_FIELDS}
),
evented AS (
  ${insertEvents('booking.confirmed', bookingJson('inserted'), 'inserted')}
),
recorded AS (
  INSERT INTO idempotency_keys (customer_id, endpoint, key, request_hash, response_status, response_body, expires_at)
  SELECT a.customer_id, k.endpoint, k.key, k.request_hash, k.status, k.body, now() + make_interval(secs => k.ttl_ms / 1000.0)
    FROM accepted a
    JOIN unnest($5::text[], $6::text[], $7::text[], $8::int[], $9::jsonb[], $10::bigint[])
         WITH ORDINALITY AS k(endpoint, key, request_hash, status, body, ttl_ms, position) USING (position)
   WHERE k.key IS NOT NULL
  ON CONFLICT (customer_id, endpoint, key) DO UPDATE
     SET request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
         response_body = EXCLUDED.response_body, created_at = now(), expires_at = EXCLUDED.expires_at
   WHERE idempotency_keys.expires_at <= now()
  RETURNING key
)
SELECT d.accepted, d.free_after + CASE WHEN d.accepted THEN d.slots ELSE 0 END AS free_before, l.held_slots AS stored_held_slots,
       CASE WHEN NOT d.accepted AND d.customer_limit IS NOT NULL AND d.customer_slots_before + d.slots > d.customer_limit THEN d.customer_limit END AS customer_limit,
       d.customer_slots_before::int AS customer_slots_before,
       (SELECT count(*) FROM recorded)::int AS records_written, b.*
  FROM requests r
  LEFT JOIN decided d ON d.position = r.position AND d.turn > 0
  LEFT JOIN locked l ON l.id = r.match_id
  LEFT JOIN inserted b ON b.id = d.booking_id
 ORDER BY r.position`;

/** A match whose counters differ from the sums of its rows (found by the reconciliation job). */
export interface CounterDrift {
  matchId: string;
  bookedSlots: number;
  expectedSlots: number;
  heldSlots: number;
  expectedHeldSlots: number;
  waitingEntries: number;
  expectedWaitingEntries: number;
}

/** A waitlist entry that disagrees with the hold of its offer (found by the reconciliation job). */
export interface OfferMismatch {
  entryId: string;
  entryStatus: WaitlistStatus;
  holdId: string;
  holdStatus: HoldStatus;
}

/**
 * The slot ledger: the only code that locks match rows, changes their `booked_slots` and
 * `held_slots` counters, releases expired holds and computes free slots. Every write that takes
 * or gives back slots (a booking batch, a cancellation, a reschedule, a hold created, confirmed,
 * released or expired, a capacity change) goes through one of its methods, inside the caller's
 * transaction; each method locks the rows it needs first (lock order everywhere: match rows by
 * id, then their bookings and holds), and its statement also writes the events of its changes
 * (events/event-sql.ts). The counters are in slot-counters.ts.
 */
@Injectable()
export class SlotLedger {
  constructor(
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'database' | 'waitlist'>,
  ) {}

  /**
   * Locks match rows until the transaction ends, in one fixed order (by id), so that two
   * transactions locking the same rows can never wait for each other in a cycle. Returns the
   * matches found. The time this takes is nearly all lock wait, and is recorded as such.
   */
  async lockMatches(queryRunner: QueryRunner, ids: string[], transaction: string): Promise<Map<string, LockedMatch>> {
    const stopTimer = this.metrics.rowLockWait.startTimer({ transaction });
    try {
      const rows = await queryPreparedRows<{
        id: string;
        capacity: number;
        booked_slots: number;
        held_slots: number;
        max_slots_per_customer: number | null;
        waiting_entries: number;
      }>(
        queryRunner,
        statementName(this.config.database, 'lock-matches'),
        LOCK_MATCHES_SQL,
        [ids],
      );
      return new Map(
        rows.map((row) => [
          row.id,
          {
            id: row.id,
            capacity: row.capacity,
            bookedSlots: row.booked_slots,
            storedHeldSlots: row.held_slots,
            maxSlotsPerCustomer: row.max_slots_per_customer,
            waitingEntries: row.waiting_entries,
          },
        ]),
      );
    } finally {
      stopTimer();
    }
  }

  async lockMatch(queryRunner: QueryRunner, id: string, transaction: string): Promise<LockedMatch | undefined> {
    return (await this.lockMatches(queryRunner, [id], transaction)).get(id);
  }

  /**
   * Free slots of a locked match (at its capacity, or at `capacity` when given). The stored held
   * counter may still include expired holds; when it says there is not enough room and some
   * slots are held, the match's expired holds are released right here (offering their slots to
   * the waitlist), so an expired hold never blocks a take, whether the sweep ran or not. The
   * common case costs no query.
   */
  async freeSlots(queryRunner: QueryRunner, match: LockedMatch, wanted: number, capacity = match.capacity): Promise<number> {
    const free = freeSlots({ capacity, bookedSlots: match.bookedSlots, heldSlots: match.storedHeldSlots });
    if (free >= wanted || match.storedHeldSlots === 0) return free;
    const released = await this.releaseExpiredHolds(queryRunner, [match.id]);
    if (released.holds === 0) return free;
    // Without a line the release made no offers, so its slots are all free now.
    if (match.waitingEntries === 0) return free + released.slots;
    // The release may have made offers: read the counters again (the row is ours, this does not wait).
    const current = (await this.lockMatch(queryRunner, match.id, 'reread-counters'))!;
    return freeSlots({ capacity, bookedSlots: current.bookedSlots, heldSlots: current.storedHeldSlots });
  }

  /** What a take (a hold, a reschedule into the match) can have of a locked match: nothing while its waitlist waits, else the free slots. */
  async availableSlots(queryRunner: QueryRunner, match: LockedMatch, wanted: number): Promise<number> {
    return match.waitingEntries > 0 ? 0 : this.freeSlots(queryRunner, match, wanted);
  }

  /**
   * Refuses a take that would give the customer more slots in the locked match than its
   * per-customer limit (confirmed bookings and live holds count; an offer is a hold). A match
   * without a limit costs no query.
   */
  async ensureWithinCustomerLimit(queryRunner: QueryRunner, match: LockedMatch, customerId: string, slots: number): Promise<void> {
    if (match.maxSlotsPerCustomer === null) return;
    const [row] = await queryRows<{ slots: number }>(queryRunner, `SELECT (${customerSlotsSql('$1::uuid', '$2')})::int AS slots`, [match.id, customerId]);
    const current = row?.slots ?? 0;
    if (current + slots > match.maxSlotsPerCustomer) throw new CustomerLimitReachedError(match.id, match.maxSlotsPerCustomer, current, slots);
  }

  /** The reservation statement (RESERVE_SLOTS_SQL). Returns one row per request, in order. Call with the match rows locked (lockMatches). */
  async reserve(queryRunner: QueryRunner, requests: ReservationRequestRow[]): Promise<ReservationRow[]> {
    // Without a key in the batch, the record columns are NULL arrays rather than arrays of NULLs:
    // unnest() gives no rows either way, and six arrays a batch are not written out and parsed.
    const records = requests.some((r) => r.record !== undefined);
    const recordColumn = <T>(value: (record: NonNullable<ReservationRequestRow['record']>) => T): Array<T | null> | null =>
      records ? requests.map((r) => (r.record ? value(r.record) : null)) : null;
    return queryPreparedRows<ReservationRow>(queryRunner, statementName(this.config.database, 'reserve-slots'), RESERVE_SLOTS_SQL, [
      requests.map((r) => r.matchId),
      requests.map((r) => r.bookingId),
      requests.map((r) => r.customerId),
      requests.map((r) => r.slots),
      recordColumn((record) => record.endpoint),
      recordColumn((record) => record.key),
      recordColumn((record) => record.requestHash),
      recordColumn((record) => record.status),
      recordColumn((record) => JSON.stringify(record.body)),
      recordColumn((record) => record.ttlMs),
    ]);
  }

  /**
   * Locks the match and cancels a confirmed booking of it, giving its slots back. Returns
   * undefined when the booking is not confirmed (already cancelled) or not on that match.
   */
  async cancelBooking(queryRunner: QueryRunner, bookingId: string, matchId: string): Promise<Booking | undefined> {
    const match = await this.lockMatch(queryRunner, matchId, 'cancel-booking');
    const [row] = await queryRows<BookingRow>(
      queryRunner,
      `WITH cancelled AS (
         UPDATE bookings SET status = 'cancelled', cancelled_at = now()
          WHERE id = $1 AND match_id = $2 AND status = 'confirmed'
          RETURNING ${BOOKING_COLUMNS}
       ), released AS (
         UPDATE matches SET booked_slots = booked_slots - cancelled.slots
           FROM cancelled WHERE matches.id = cancelled.match_id
       ), evented AS (
         ${insertEvents('booking.cancelled', bookingJson('cancelled'), 'cancelled')}
       )
       SELECT * FROM cancelled`,
      [bookingId, matchId],
    );
    if (row && match) await this.offerFreedSlots(queryRunner, [match]);
    return row && toBooking(row);
  }

  /**
   * Locks both matches and moves a confirmed booking from one to the other with its slots.
   * Refuses an unknown target (404) or one without room (409). Returns undefined when the
   * booking is not confirmed on `booking.matchId` any more.
   */
  async moveBooking(queryRunner: QueryRunner, booking: { id: string; matchId: string; customerId: string; slots: number }, toMatchId: string): Promise<Booking | undefined> {
    const locked = await this.lockMatches(queryRunner, [booking.matchId, toMatchId], 'reschedule-booking');
    const target = locked.get(toMatchId);
    if (!target) throw new MatchNotFoundError(toMatchId);
    // Moving within one match takes nothing from its line.
    const available = booking.matchId === toMatchId ? await this.freeSlots(queryRunner, target, booking.slots) : await this.availableSlots(queryRunner, target, booking.slots);
    if (available < booking.slots) throw new InsufficientSlotsError(toMatchId, booking.slots, available);
    if (booking.matchId !== toMatchId) await this.ensureWithinCustomerLimit(queryRunner, target, booking.customerId, booking.slots);
    const [row] = await queryRows<BookingRow>(
      queryRunner,
      `WITH moved AS (
         UPDATE bookings SET match_id = $3
          WHERE id = $1 AND match_id = $2 AND status = 'confirmed'
          RETURNING ${BOOKING_COLUMNS}
       ), released AS (
         UPDATE matches SET booked_slots = booked_slots - moved.slots FROM moved WHERE matches.id = $2
       ), taken AS (
         UPDATE matches SET booked_slots = booked_slots + moved.slots FROM moved WHERE matches.id = $3
       ), evented AS (
         ${insertEvents('booking.rescheduled', `${bookingJson('moved')} || jsonb_build_object('fromMatchId', $2::uuid)`, 'moved')}
       )
       SELECT * FROM moved`,
      [booking.id, booking.matchId, toMatchId],
    );
    const source = locked.get(booking.matchId);
    if (row && source && booking.matchId !== toMatchId) await this.offerFreedSlots(queryRunner, [source]);
    return row && toBooking(row);
  }

  /** Locks the match and holds slots of it if they are free (404 for an unknown match, 409 without room). */
  async createHold(queryRunner: QueryRunner, hold: { id: string; matchId: string; customerId: string; slots: number; ttlMs: number }): Promise<Hold> {
    const match = await this.lockMatch(queryRunner, hold.matchId, 'create-hold');
    if (!match) throw new MatchNotFoundError(hold.matchId);
    const available = await this.availableSlots(queryRunner, match, hold.slots);
    if (available < hold.slots) throw new InsufficientSlotsError(hold.matchId, hold.slots, available);
    await this.ensureWithinCustomerLimit(queryRunner, match, hold.customerId, hold.slots);
    const [row] = await queryRows<HoldRow>(
      queryRunner,
      `WITH counted AS (
         UPDATE matches SET held_slots = held_slots + $3 WHERE id = $1
       ), held AS (
         INSERT INTO holds (id, match_id, customer_id, slots, expires_at)
         VALUES ($5, $1, $2, $3, now() + make_interval(secs => $4 / 1000.0))
         RETURNING ${HOLD_COLUMNS}
       ), evented AS (
         ${insertEvents('hold.created', holdJson('held'), 'held')}
       )
       SELECT * FROM held`,
      [hold.matchId, hold.customerId, hold.slots, hold.ttlMs, hold.id],
    );
    return toHold(row!);
  }

  /**
   * Locks the match and turns an active, unexpired hold into a confirmed booking, moving its
   * slots from held to booked (a waitlist offer's entry is accepted). Returns undefined when the
   * hold is not active and unexpired any more (the match row stays locked, for releaseExpiredHolds).
   */
  async confirmHold(queryRunner: QueryRunner, hold: { id: string; matchId: string }, bookingId: string): Promise<Booking | undefined> {
    await this.lockMatch(queryRunner, hold.matchId, 'confirm-hold');
    const [row] = await queryRows<BookingRow>(
      queryRunner,
      `WITH hold AS (
         UPDATE holds SET status = 'confirmed', resolved_at = now(), booking_id = $3
          WHERE id = $1 AND match_id = $2 AND status = 'active' AND expires_at > now()
          RETURNING ${HOLD_COLUMNS}
       ), counted AS (
         UPDATE matches SET held_slots = held_slots - hold.slots, booked_slots = booked_slots + hold.slots
           FROM hold WHERE matches.id = hold.match_id
       ), booked AS (
         INSERT INTO bookings (id, match_id, customer_id, slots)
         SELECT $3, match_id, customer_id, slots FROM hold
         RETURNING ${BOOKING_COLUMNS}
       ), hold_evented AS (
         ${insertEvents('hold.confirmed', holdJson('hold'), 'hold')}
       ), booking_evented AS (
         ${insertEvents('booking.confirmed', bookingJson('booked'), 'booked')}
       ), ${closeOffersSql('hold', 'confirmed')}
       SELECT * FROM booked`,
      [hold.id, hold.matchId, bookingId],
    );
    return row && toBooking(row);
  }

  /**
   * Locks the match and releases an active hold of it (expired or not), giving its slots back; a
   * released waitlist offer is declined, and its slots go to the next in line.
   */
  async releaseHold(queryRunner: QueryRunner, hold: { id: string; matchId: string }): Promise<boolean> {
    const match = await this.lockMatch(queryRunner, hold.matchId, 'release-hold');
    return match !== undefined && this.releaseLockedHold(queryRunner, hold, match);
  }

  private async releaseLockedHold(queryRunner: QueryRunner, hold: { id: string; matchId: string }, match: LockedMatch): Promise<boolean> {
    const [row] = await queryRows<{ released: string }>(
      queryRunner,
      `WITH released AS (
         UPDATE holds SET status = 'released', resolved_at = now()
          WHERE id = $1 AND match_id = $2 AND status = 'active'
          RETURNING ${HOLD_COLUMNS}
       ), counted AS (
         UPDATE matches SET held_slots = held_slots - released.slots FROM released WHERE matches.id = $2
       ), evented AS (
         ${insertEvents('hold.released', holdJson('released'), 'released')}
       ), ${closeOffersSql('released', 'released')}
       SELECT count(*) AS released FROM released`,
      [hold.id, hold.matchId],
    );
    const released = Number(row?.released ?? 0) === 1;
    if (released) await this.offerFreedSlots(queryRunner, [match]);
    return released;
  }

  /**
   * Marks the expired active holds of the given matches as expired (an expired waitlist offer's
   * entry too) and takes their slots off the stored held counters, then offers the freed slots
   * to the matches' waitlists. Call with those match rows locked (by this ledger, in this transaction).
   */
  async releaseExpiredHolds(queryRunner: QueryRunner, matchIds: string[]): Promise<{ holds: number; slots: number }> {
    const [row] = await queryRows<{ holds: string; slots: string }>(
      queryRunner,
      `WITH expired AS (
         UPDATE holds SET status = 'expired', resolved_at = now()
          WHERE match_id = ANY($1::uuid[]) AND status = 'active' AND expires_at <= now()
          RETURNING ${HOLD_COLUMNS}
       ), per_match AS (
         SELECT match_id, SUM(slots) AS slots FROM expired GROUP BY match_id
       ), released AS (
         UPDATE matches SET held_slots = held_slots - per_match.slots FROM per_match WHERE matches.id = per_match.match_id
       ), evented AS (
         ${insertEvents('hold.expired', holdJson('expired'), 'expired')}
       ), ${closeOffersSql('expired', 'expired')}
       SELECT count(*) AS holds, COALESCE(SUM(slots), 0) AS slots FROM expired`,
      [matchIds],
    );
    const released = { holds: Number(row?.holds ?? 0), slots: Number(row?.slots ?? 0) };
    if (released.holds > 0) await this.offerFreedSlots(queryRunner, matchIds);
    return released;
  }

  /**
   * For the hold sweep: locks those of the matches that no one else has locked (SKIP LOCKED: the
   * sweep never waits behind bookings, and a busy match's own bookings release its expired
   * holds) and releases their expired holds. Returns how many holds expired.
   */
  async releaseExpiredHoldsOfIdleMatches(queryRunner: QueryRunner, matchIds: string[]): Promise<number> {
    const locked = await queryRows<{ id: string }>(queryRunner, 'SELECT id FROM matches WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE SKIP LOCKED', [matchIds]);
    if (locked.length === 0) return 0;
    return (await this.releaseExpiredHolds(queryRunner, locked.map((row) => row.id))).holds;
  }

  /** Matches that have expired active holds, for the sweep (served by holds_active_expiry_idx). */
  async matchesWithDueHolds(queryRunner: QueryRunner, limit: number): Promise<string[]> {
    const rows = await queryRows<{ match_id: string }>(
      queryRunner,
      `SELECT DISTINCT match_id FROM (
         SELECT match_id FROM holds WHERE status = 'active' AND expires_at <= now() ORDER BY expires_at LIMIT $1
       ) due`,
      [limit * 10],
    );
    return rows.slice(0, limit).map((row) => row.match_id);
  }

  /**
   * Locks the match for a change of its capacity (and other fields), refuses a capacity below its
   * booked and live held slots, and lets `change` write the change; then a new capacity's free
   * slots go to the waitlist. Returns what `change` returned, or its second result when offers
   * were made (read again after them).
   */
  async changeMatch<T>(queryRunner: QueryRunner, matchId: string, capacity: number | undefined, change: () => Promise<T>, reread: () => Promise<T>): Promise<T> {
    const match = await this.lockMatch(queryRunner, matchId, 'update-match');
    if (!match) throw new MatchNotFoundError(matchId);
    if (capacity !== undefined) {
      // Free slots at the new capacity must not go negative: booked and live held slots stay.
      const freeAtNewCapacity = await this.freeSlots(queryRunner, match, 0, capacity);
      if (freeAtNewCapacity < 0) {
        const liveHeldSlots = capacity - match.bookedSlots - freeAtNewCapacity;
        throw new CapacityBelowBookedError(matchId, capacity, match.bookedSlots, liveHeldSlots);
      }
    }
    const changed = await change();
    if (capacity === undefined) return changed;
    return (await this.offerFreedSlots(queryRunner, [match])) > 0 ? reread() : changed;
  }

  /**
   * Offers the free slots of locked matches to their waitlists (OFFER_FREED_SLOTS_SQL), after a
   * write that freed slots; a match whose line is empty costs no query. Returns the offers made.
   */
  async offerFreedSlots(queryRunner: QueryRunner, matches: Array<LockedMatch | string>): Promise<number> {
    const ids = matches.flatMap((match) => (typeof match === 'string' ? [match] : match.waitingEntries > 0 ? [match.id] : []));
    if (ids.length === 0) return 0;
    const [row] = await queryPreparedRows<{ offers: number }>(queryRunner, statementName(this.config.database, 'offer-freed-slots'), OFFER_FREED_SLOTS_SQL, [
      ids,
      this.config.waitlist.offerTtlMs,
    ]);
    return row?.offers ?? 0;
  }

  /**
   * Locks the match and puts the customer at the back of its line. Refused: an unknown match
   * (404), more slots than its capacity (they could never be offered), a second open entry of
   * the customer (409), enough slots available now (409: book instead), over the per-customer
   * limit (409). Returns the new entry.
   */
  async joinWaitlist(queryRunner: QueryRunner, entry: { id: string; matchId: string; customerId: string; slots: number }): Promise<WaitlistEntry> {
    const match = await this.lockMatch(queryRunner, entry.matchId, 'join-waitlist');
    if (!match) throw new MatchNotFoundError(entry.matchId);
    if (entry.slots > match.capacity) throw new InvalidInputError('slots', `slots must not be greater than the match's capacity (${match.capacity})`);
    const [open] = await queryRows<{ id: string }>(
      queryRunner,
      `SELECT id FROM waitlist_entries WHERE match_id = $1 AND customer_id = $2 AND status IN ('waiting', 'offered')`,
      [entry.matchId, entry.customerId],
    );
    if (open) throw new WaitlistEntryExistsError(entry.matchId, open.id);
    const available = await this.availableSlots(queryRunner, match, entry.slots);
    if (available >= entry.slots) throw new SlotsAvailableError(entry.matchId, entry.slots, available);
    await this.ensureWithinCustomerLimit(queryRunner, match, entry.customerId, entry.slots);
    const [joined] = await queryRows<WaitlistEntryRow>(queryRunner, JOIN_LINE_SQL, [entry.id, entry.matchId, entry.customerId, entry.slots]);
    return toWaitlistEntry(joined!);
  }

  /**
   * Locks the match and takes the entry off the waitlist: a waiting entry leaves the line (and
   * the entries behind it may now fit), an offered one declines its offer (its hold is released
   * and its slots go to the next in line). An entry already closed is left as it is.
   */
  async leaveWaitlist(queryRunner: QueryRunner, entry: { id: string; matchId: string }): Promise<void> {
    const match = await this.lockMatch(queryRunner, entry.matchId, 'leave-waitlist');
    if (!match) return;
    const [current] = await queryRows<{ status: WaitlistStatus; hold_id: string | null }>(queryRunner, 'SELECT status, hold_id FROM waitlist_entries WHERE id = $1', [entry.id]);
    if (current?.status === 'offered') {
      await this.releaseLockedHold(queryRunner, { id: current.hold_id!, matchId: entry.matchId }, match);
    } else if (current?.status === 'waiting') {
      await queryRows(queryRunner, LEAVE_LINE_SQL, [entry.id, entry.matchId]);
      await this.offerFreedSlots(queryRunner, [entry.matchId]);
    }
  }

  /**
   * The matches whose counters differ from the sums of their confirmed bookings, active holds and
   * waiting entries. One statement reads one snapshot, so a booking committing meanwhile cannot
   * show as drift.
   */
  async counterDrift(queryRunner: QueryRunner): Promise<CounterDrift[]> {
    const rows = await queryRows<{
      id: string;
      booked_slots: number;
      expected_slots: string;
      held_slots: number;
      expected_held_slots: string;
      waiting_entries: number;
      expected_waiting_entries: string;
    }>(
      queryRunner,
      `SELECT m.id, m.booked_slots, m.held_slots, m.waiting_entries,
              b.confirmed AS expected_slots, h.active AS expected_held_slots, w.waiting AS expected_waiting_entries
         FROM matches m
         CROSS JOIN LATERAL (SELECT COALESCE(SUM(slots), 0) AS confirmed FROM bookings WHERE match_id = m.id AND status = 'confirmed') b
         CROSS JOIN LATERAL (SELECT COALESCE(SUM(slots), 0) AS active FROM holds WHERE match_id = m.id AND status = 'active') h
         CROSS JOIN LATERAL (SELECT count(*) AS waiting FROM waitlist_entries WHERE match_id = m.id AND status = 'waiting') w
        WHERE m.booked_slots <> b.confirmed OR m.held_slots <> h.active OR m.waiting_entries <> w.waiting`,
    );
    return rows.map((row) => ({
      matchId: row.id,
      bookedSlots: row.booked_slots,
      expectedSlots: Number(row.expected_slots),
      heldSlots: row.held_slots,
      expectedHeldSlots: Number(row.expected_held_slots),
      waitingEntries: row.waiting_entries,
      expectedWaitingEntries: Number(row.expected_waiting_entries),
    }));
  }

  /** Waitlist entries waiting for an offer, over all matches (the stored counters). */
  async waitingEntries(queryRunner: QueryRunner): Promise<number> {
    const [row] = await queryRows<{ entries: string }>(queryRunner, 'SELECT COALESCE(SUM(waiting_entries), 0) AS entries FROM matches');
    return Number(row?.entries ?? 0);
  }

  /**
   * Waitlist offers that disagree with their holds: an offered entry whose hold is no longer
   * active, an accepted one whose hold was not confirmed, a hold of other slots or of another
   * customer or match. Each is written with its hold in one statement, so any is a bug.
   */
  async offerMismatches(queryRunner: QueryRunner): Promise<OfferMismatch[]> {
    const rows = await queryRows<{ entry_id: string; entry_status: WaitlistStatus; hold_id: string; hold_status: HoldStatus }>(
      queryRunner,
      `SELECT w.id AS entry_id, w.status AS entry_status, h.id AS hold_id, h.status AS hold_status
         FROM waitlist_entries w
         JOIN holds h ON h.id = w.hold_id
         LEFT JOIN ${ENTRY_STATUS_OF_HOLD_SQL} ON agreed.hold_status = h.status
        WHERE agreed.entry_status IS DISTINCT FROM w.status
           OR h.slots <> w.slots OR h.customer_id <> w.customer_id OR h.match_id <> w.match_id OR h.expires_at <> w.expires_at`,
    );
    return rows.map((row) => ({ entryId: row.entry_id, entryStatus: row.entry_status, holdId: row.hold_id, holdStatus: row.hold_status }));
  }
}
