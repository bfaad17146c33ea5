import type { HoldStatus } from './hold.entity';

export interface Hold {
  id: string;
  matchId: string;
  customerId: string;
  slots: number;
  status: HoldStatus;
  expiresAt: Date;
  createdAt: Date;
  resolvedAt: Date | null;
  bookingId: string | null;
}

/** A holds row as selected with HOLD_COLUMNS (by the holds repository and the slot ledger). */
export interface HoldRow {
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

export const HOLD_COLUMNS = 'id, match_id, customer_id, slots, status, expires_at, created_at, resolved_at, booking_id';

export function toHold(row: HoldRow): Hold {
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
