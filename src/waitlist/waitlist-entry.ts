import { positionAtSql } from '../database/sql';
import type { WaitlistStatus } from './waitlist-entry.entity';

/** A waitlist entry as the API shows it. */
export interface WaitlistEntry {
  id: string;
  matchId: string;
  customerId: string;
  slots: number;
  status: WaitlistStatus;
  /** The entry's place in its match's line (1: served next); null once it stopped waiting. */
  position: number | null;
  /** The hold of the offer, once offered. */
  holdId: string | null;
  /** When the offer runs out, once offered. */
  expiresAt: Date | null;
  createdAt: Date;
  resolvedAt: Date | null;
}

/** A waitlist_entries row as selected with waitlistEntryColumns(). */
export interface WaitlistEntryRow {
  id: string;
  match_id: string;
  customer_id: string;
  slots: number;
  status: WaitlistStatus;
  position: string | null;
  hold_id: string | null;
  expires_at: Date | null;
  created_at: Date;
  resolved_at: Date | null;
  position_at: string;
}

/**
 * The place in line of the waiting entry `alias` (null for other statuses): one more than the
 * waiting entries ahead of it. Served by waitlist_entries_line_idx.
 */
export function linePositionSql(alias: string): string {
  return `CASE WHEN ${alias}.status = 'waiting' THEN 1 + (SELECT count(*) FROM waitlist_entries ahead
     WHERE ahead.match_id = ${alias}.match_id AND ahead.status = 'waiting' AND ahead.line_number < ${alias}.line_number) END`;
}

/** The columns toWaitlistEntry() reads, of the waitlist_entries row `alias`. */
export function waitlistEntryColumns(alias: string): string {
  return `${alias}.id, ${alias}.match_id, ${alias}.customer_id, ${alias}.slots, ${alias}.status, ${linePositionSql(alias)} AS position,
  ${alias}.hold_id, ${alias}.expires_at, ${alias}.created_at, ${alias}.resolved_at,
  ${positionAtSql(`${alias}.created_at`)} AS position_at`;
}

export function toWaitlistEntry(row: Omit<WaitlistEntryRow, 'position_at'>): WaitlistEntry {
  return {
    id: row.id,
    matchId: row.match_id,
    customerId: row.customer_id,
    slots: row.slots,
    status: row.status,
    position: row.position === null ? null : Number(row.position),
    holdId: row.hold_id,
    expiresAt: row.expires_at,
    createdAt: row.created_at,
    resolvedAt: row.resolved_at,
  };
}
