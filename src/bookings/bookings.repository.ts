import { Inject, Injectable } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { type KeysetPosition, queryPreparedRows, queryRows, statementName } from '../database/sql';
import type { BookingStatus } from './booking.entity';
import type { Booking } from './booking';

/** A bookings row as selected with BOOKING_COLUMNS (also by statements of other repositories). */
export interface BookingRow {
  id: string;
  match_id: string;
  customer_id: string;
  slots: number;
  status: BookingStatus;
  created_at: Date;
  cancelled_at: Date | null;
  position_at: string;
}

/** The columns toBooking() reads. */
const BOOKING_FIELDS = 'id, match_id, customer_id, slots, status, created_at, cancelled_at';

export const BOOKING_COLUMNS = `${BOOKING_FIELDS},
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position_at`;

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
  /** Free slots of the match when this request's turn came. */
  free_before: number | null;
  /** The match's held_slots counter, which may include expired holds (see holds/slot-availability.ts). */
  held_slots: number | null;
  /** Idempotency records the statement wrote, over the whole batch. */
  records_written: number;
}

type Nullable<T> = { [K in keyof T]: T[K] | null };

/**
 * The reservation of a batch of requests (of one match or of many), in one statement, run right
 * after LOCK_MATCHES_SQL has locked the batch's match rows (matches.repository.ts):
 * - read the locked rows' counters;
 * - decide each match's requests first come, first served: each takes its slots if they are
 *   still free (a request for 3 slots may be refused while a later one for 1 slot is served);
 * - add the accepted slots to the counters, insert the accepted bookings (ids made by the caller)
 *   and the idempotency records of the accepted requests that carry a key.
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
  SELECT id, capacity - booked_slots - held_slots AS free_slots, held_slots FROM matches
   WHERE id IN (SELECT match_id FROM requests)
),
decided (match_id, turn, position, booking_id, customer_id, slots, accepted, free_after) AS (
  SELECT id, 0::bigint, 0::bigint, NULL::uuid, NULL::text, 0, false, free_slots FROM locked
  UNION ALL
  SELECT r.match_id, r.turn, r.position, r.booking_id, r.customer_id, r.slots, r.slots <= d.free_after,
         CASE WHEN r.slots <= d.free_after THEN d.free_after - r.slots ELSE d.free_after END
    FROM decided d JOIN requests r ON r.match_id = d.match_id AND r.turn = d.turn + 1
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
SELECT d.accepted, d.free_after + CASE WHEN d.accepted THEN d.slots ELSE 0 END AS free_before, l.held_slots,
       (SELECT count(*) FROM recorded)::int AS records_written, b.*
  FROM requests r
  LEFT JOIN decided d ON d.position = r.position AND d.turn > 0
  LEFT JOIN locked l ON l.id = r.match_id
  LEFT JOIN inserted b ON b.id = d.booking_id
 ORDER BY r.position`;

export interface BookingListFilter {
  customerId?: string;
  matchId?: string;
  status?: BookingStatus;
  before?: KeysetPosition;
  limit: number;
}

/** Every SQL statement about bookings, including the counter updates that go with them. */
@Injectable()
export class BookingsRepository {
  constructor(
    private readonly dataSource: DataSource,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'database'>,
  ) {}

  /** The reservation statement (RESERVE_SLOTS_SQL). Returns one row per request, in order. Call with the match rows locked. */
  async reserveLocked(queryRunner: QueryRunner, requests: ReservationRequestRow[]): Promise<ReservationRow[]> {
    return queryPreparedRows<ReservationRow>(queryRunner, statementName(this.config.database, 'reserve-slots'), RESERVE_SLOTS_SQL, [
      requests.map((r) => r.matchId),
      requests.map((r) => r.bookingId),
      requests.map((r) => r.customerId),
      requests.map((r) => r.slots),
      requests.map((r) => r.record?.endpoint ?? null),
      requests.map((r) => r.record?.key ?? null),
      requests.map((r) => r.record?.requestHash ?? null),
      requests.map((r) => r.record?.status ?? null),
      requests.map((r) => (r.record ? JSON.stringify(r.record.body) : null)),
      requests.map((r) => r.record?.ttlMs ?? null),
    ]);
  }

  /**
   * Cancels a confirmed booking of the given match and gives its slots back, in one statement.
   * Returns undefined when the booking is not confirmed (already cancelled) or not on that match.
   * Call with the match row locked.
   */
  async cancelConfirmed(queryRunner: QueryRunner, bookingId: string, matchId: string): Promise<Booking | undefined> {
    const [row] = await queryRows<BookingRow>(
      queryRunner,
      `WITH cancelled AS (
         UPDATE bookings SET status = 'cancelled', cancelled_at = now()
          WHERE id = $1 AND match_id = $2 AND status = 'confirmed'
          RETURNING ${BOOKING_COLUMNS}
       ), released AS (
         UPDATE matches SET booked_slots = booked_slots - cancelled.slots
           FROM cancelled WHERE matches.id = cancelled.match_id
       )
       SELECT * FROM cancelled`,
      [bookingId, matchId],
    );
    return row && toBooking(row);
  }

  /**
   * Moves a confirmed booking from one match to another and moves its slots between the two
   * counters, in one statement. Returns undefined when the booking is not confirmed on
   * `fromMatchId` any more. Call with both match rows locked.
   */
  async moveConfirmed(queryRunner: QueryRunner, bookingId: string, fromMatchId: string, toMatchId: string): Promise<Booking | undefined> {
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
       )
       SELECT * FROM moved`,
      [bookingId, fromMatchId, toMatchId],
    );
    return row && toBooking(row);
  }

  /** Those of `ids` that exist, on a pooled connection of its own. */
  async existingIds(ids: string[]): Promise<string[]> {
    const rows = await queryRows<{ id: string }>(this.dataSource, 'SELECT id FROM bookings WHERE id = ANY($1::uuid[])', [ids]);
    return rows.map((row) => row.id);
  }

  async findById(id: string, executor: QueryRunner | DataSource = this.dataSource): Promise<Booking | undefined> {
    const [row] = await queryRows<BookingRow>(executor, `SELECT ${BOOKING_COLUMNS} FROM bookings WHERE id = $1`, [id]);
    return row && toBooking(row);
  }

  /** Newest first; each filter combination is served by one of the bookings_*_created_idx indexes. */
  async list(filter: BookingListFilter): Promise<Array<{ booking: Booking; position: KeysetPosition }>> {
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    const add = (condition: (placeholder: string) => string, value: unknown): void => {
      parameters.push(value);
      conditions.push(condition(`$${parameters.length}`));
    };
    if (filter.customerId !== undefined) add((p) => `customer_id = ${p}`, filter.customerId);
    if (filter.matchId !== undefined) add((p) => `match_id = ${p}`, filter.matchId);
    if (filter.status !== undefined) add((p) => `status = ${p}`, filter.status);
    if (filter.before) {
      parameters.push(filter.before.at, filter.before.id);
      conditions.push(`(created_at, id) < ($${parameters.length - 1}::timestamptz, $${parameters.length}::uuid)`);
    }
    parameters.push(filter.limit);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const rows = await queryRows<BookingRow>(
      this.dataSource,
      `SELECT ${BOOKING_COLUMNS} FROM bookings ${where} ORDER BY created_at DESC, id DESC LIMIT $${parameters.length}`,
      parameters,
    );
    return rows.map((row) => ({ booking: toBooking(row), position: { at: row.position_at, id: row.id } }));
  }
}

export function toBooking(row: Omit<BookingRow, 'position_at'>): Booking {
  return {
    id: row.id,
    matchId: row.match_id,
    customerId: row.customer_id,
    slots: row.slots,
    status: row.status,
    createdAt: row.created_at,
    cancelledAt: row.cancelled_at,
  };
}
