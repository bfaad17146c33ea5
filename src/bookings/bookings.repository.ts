import { Injectable } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import { type KeysetPosition, queryRows } from '../database/sql';
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

export const BOOKING_COLUMNS = `id, match_id, customer_id, slots, status, created_at, cancelled_at,
  to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS position_at`;

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
  constructor(private readonly dataSource: DataSource) {}

  /**
   * Adds the slots to the match's counter and inserts the booking in one round trip, so the
   * match row lock is held for as short a time as possible. Call with the match row locked.
   */
  async insertConfirmed(
    queryRunner: QueryRunner,
    booking: { matchId: string; customerId: string; slots: number },
  ): Promise<Booking> {
    const [row] = await queryRows<BookingRow>(
      queryRunner,
      `WITH counted AS (UPDATE matches SET booked_slots = booked_slots + $3 WHERE id = $1)
       INSERT INTO bookings (match_id, customer_id, slots) VALUES ($1, $2, $3)
       RETURNING ${BOOKING_COLUMNS}`,
      [booking.matchId, booking.customerId, booking.slots],
    );
    return toBooking(row!);
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

export function toBooking(row: BookingRow): Booking {
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
