import { Injectable } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import { type KeysetPosition, queryRows } from '../database/sql';
import type { BookingStatus } from './booking.entity';
import { type Booking, BOOKING_COLUMNS, type BookingRow, toBooking } from './booking';

export interface BookingListFilter {
  customerId?: string;
  matchId?: string;
  status?: BookingStatus;
  before?: KeysetPosition;
  limit: number;
}

/** The reads of bookings. The writes change slot counters too, so they are the slot ledger's (inventory/slot-ledger.ts). */
@Injectable()
export class BookingsRepository {
  constructor(private readonly dataSource: DataSource) {}

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
