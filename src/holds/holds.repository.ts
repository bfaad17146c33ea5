import { Injectable } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import { queryRows } from '../database/sql';
import type { Booking } from '../bookings/booking';
import { BOOKING_COLUMNS, type BookingRow, toBooking } from '../bookings/bookings.repository';
import type { HoldStatus } from './hold.entity';
import type { Hold } from './hold';

interface HoldRow {
  id: string;
  match_id: string;
  customer_id: string;
  slots: number;
  status: HoldStatus;
  expires_at: Date;
  created_at: Date;
  resolved_at: Date | null;
  booking_id: string | null;
}

const HOLD_COLUMNS = 'id, match_id, customer_id, slots, status, expires_at, created_at, resolved_at, booking_id';

/** Every SQL statement about holds, with the matches.held_slots updates that go with them. */
@Injectable()
export class HoldsRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** Inserts an active hold and counts its slots as held, in one round trip. Call with the match row locked. */
  async insertActive(queryRunner: QueryRunner, hold: { id: string; matchId: string; customerId: string; slots: number; ttlMs: number }): Promise<Hold> {
    const [row] = await queryRows<HoldRow>(
      queryRunner,
      `WITH counted AS (UPDATE matches SET held_slots = held_slots + $3 WHERE id = $1)
       INSERT INTO holds (id, match_id, customer_id, slots, expires_at)
       VALUES ($5, $1, $2, $3, now() + make_interval(secs => $4 / 1000.0))
       RETURNING ${HOLD_COLUMNS}`,
      [hold.matchId, hold.customerId, hold.slots, hold.ttlMs, hold.id],
    );
    return toHold(row!);
  }

  /**
   * Marks the expired active holds of the given matches as expired and takes their slots off
   * the held counters. Call with those match rows locked.
   */
  async expireDue(queryRunner: QueryRunner, matchIds: string[]): Promise<{ holds: number; slots: number }> {
    const [row] = await queryRows<{ holds: string; slots: string }>(
      queryRunner,
      `WITH expired AS (
         UPDATE holds SET status = 'expired', resolved_at = now()
          WHERE match_id = ANY($1::uuid[]) AND status = 'active' AND expires_at <= now()
          RETURNING match_id, slots
       ), per_match AS (
         SELECT match_id, SUM(slots) AS slots FROM expired GROUP BY match_id
       ), released AS (
         UPDATE matches SET held_slots = held_slots - per_match.slots FROM per_match WHERE matches.id = per_match.match_id
       )
       SELECT count(*) AS holds, COALESCE(SUM(slots), 0) AS slots FROM expired`,
      [matchIds],
    );
    return { holds: Number(row?.holds ?? 0), slots: Number(row?.slots ?? 0) };
  }

  /** Matches that have expired active holds, for the sweeper (served by holds_active_expiry_idx). */
  async matchesWithDueHolds(limit: number): Promise<string[]> {
    const rows = await queryRows<{ match_id: string }>(
      this.dataSource,
      `SELECT DISTINCT match_id FROM (
         SELECT match_id FROM holds WHERE status = 'active' AND expires_at <= now() ORDER BY expires_at LIMIT $1
       ) due`,
      [limit * 10],
    );
    return rows.slice(0, limit).map((row) => row.match_id);
  }

  /**
   * Turns an active, unexpired hold into a confirmed booking and moves its slots from held to
   * booked, in one statement. Returns undefined when the hold is not active and unexpired any
   * more. Call with the match row locked.
   */
  async confirm(queryRunner: QueryRunner, holdId: string, matchId: string, bookingId: string): Promise<Booking | undefined> {
    const [row] = await queryRows<BookingRow>(
      queryRunner,
      `WITH hold AS (
         UPDATE holds SET status = 'confirmed', resolved_at = now(), booking_id = $3
          WHERE id = $1 AND match_id = $2 AND status = 'active' AND expires_at > now()
          RETURNING match_id, customer_id, slots
       ), counted AS (
         UPDATE matches SET held_slots = held_slots - hold.slots, booked_slots = booked_slots + hold.slots
           FROM hold WHERE matches.id = hold.match_id
       )
       INSERT INTO bookings (id, match_id, customer_id, slots)
       SELECT $3, match_id, customer_id, slots FROM hold
       RETURNING ${BOOKING_COLUMNS}`,
      [holdId, matchId, bookingId],
    );
    return row && toBooking(row);
  }

  /** Releases an active hold (expired or not) and gives its slots back. Call with the match row locked. */
  async release(queryRunner: QueryRunner, holdId: string, matchId: string): Promise<boolean> {
    const [row] = await queryRows<{ released: string }>(
      queryRunner,
      `WITH released AS (
         UPDATE holds SET status = 'released', resolved_at = now()
          WHERE id = $1 AND match_id = $2 AND status = 'active'
          RETURNING slots
       ), counted AS (
         UPDATE matches SET held_slots = held_slots - released.slots FROM released WHERE matches.id = $2
       )
       SELECT count(*) AS released FROM released`,
      [holdId, matchId],
    );
    return Number(row?.released ?? 0) === 1;
  }

  /** The hold, and whether it has expired by the database clock. */
  async findById(id: string, executor: QueryRunner | DataSource = this.dataSource): Promise<(Hold & { expired: boolean }) | undefined> {
    const [row] = await queryRows<HoldRow & { expired: boolean }>(
      executor,
      `SELECT ${HOLD_COLUMNS}, expires_at <= now() AS expired FROM holds WHERE id = $1`,
      [id],
    );
    return row && { ...toHold(row), expired: row.expired };
  }
}

function toHold(row: HoldRow): Hold {
  return {
    id: row.id,
    matchId: row.match_id,
    customerId: row.customer_id,
    slots: row.slots,
    status: row.status,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    resolvedAt: row.resolved_at,
    bookingId: row.booking_id,
  };
}
