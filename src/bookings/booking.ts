import { positionAtSql } from '../database/sql';
import type { BookingStatus } from './booking.entity';

export interface Booking {
  id: string;
  matchId: string;
  customerId: string;
  slots: number;
  status: BookingStatus;
  createdAt: Date;
  cancelledAt: Date | null;
}

/** A bookings row as selected with BOOKING_COLUMNS (by the bookings repository and the slot ledger). */
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
export const BOOKING_FIELDS = 'id, match_id, customer_id, slots, status, created_at, cancelled_at';

export const BOOKING_COLUMNS = `${BOOKING_FIELDS},
  ${positionAtSql('created_at')} AS position_at`;

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
