import { linePositionSql } from '../waitlist/waitlist-entry';
import type { EventType } from './event-types';

/**
 * SQL fragments that write outbox events inside the statements that make the changes (the slot
 * ledger's and the matches repository's), so an event commits exactly with its change and costs
 * no extra round trip while a match row is locked. `data` is built here as the API shows the
 * resource: same member names, timestamps as ISO 8601 in UTC with milliseconds (truncated, as
 * the driver truncates them for the API).
 */

/** api_timestamp() is created by a migration (AddEventTimestampFunction). */
function iso(column: string): string {
  return `api_timestamp(${column})`;
}

/** A booking row (BOOKING_FIELDS) of `alias` as the API's Booking. */
export function bookingJson(alias: string): string {
  return `jsonb_build_object('id', ${alias}.id, 'matchId', ${alias}.match_id, 'customerId', ${alias}.customer_id, 'slots', ${alias}.slots,
    'status', ${alias}.status, 'createdAt', ${iso(`${alias}.created_at`)}, 'cancelledAt', ${iso(`${alias}.cancelled_at`)})`;
}

/** A hold row (HOLD_COLUMNS) of `alias` as the API's Hold. */
export function holdJson(alias: string): string {
  return `jsonb_build_object('id', ${alias}.id, 'matchId', ${alias}.match_id, 'customerId', ${alias}.customer_id, 'slots', ${alias}.slots,
    'status', ${alias}.status, 'expiresAt', ${iso(`${alias}.expires_at`)}, 'createdAt', ${iso(`${alias}.created_at`)},
    'resolvedAt', ${iso(`${alias}.resolved_at`)}, 'bookingId', ${alias}.booking_id)`;
}

/** A waitlist_entries row of `alias` as the API's WaitlistEntry (its place in line read as of the statement's start). */
export function waitlistEntryJson(alias: string): string {
  return `jsonb_build_object('id', ${alias}.id, 'matchId', ${alias}.match_id, 'customerId', ${alias}.customer_id, 'slots', ${alias}.slots,
    'status', ${alias}.status, 'position', ${linePositionSql(alias)}, 'holdId', ${alias}.hold_id, 'expiresAt', ${iso(`${alias}.expires_at`)},
    'createdAt', ${iso(`${alias}.created_at`)}, 'resolvedAt', ${iso(`${alias}.resolved_at`)})`;
}

/** A match row of `alias` with its live_held_slots (MATCH_COLUMNS) as the API's match, availability included. */
export function matchJson(alias: string): string {
  return `jsonb_build_object('id', ${alias}.id, 'title', ${alias}.title, 'startsAt', ${iso(`${alias}.starts_at`)}, 'capacity', ${alias}.capacity,
    'maxSlotsPerCustomer', ${alias}.max_slots_per_customer, 'bookedSlots', ${alias}.booked_slots, 'heldSlots', ${alias}.live_held_slots,
    'waitingEntries', ${alias}.waiting_entries,
    'availableSlots', CASE WHEN ${alias}.waiting_entries > 0 THEN 0 ELSE ${alias}.capacity - ${alias}.booked_slots - ${alias}.live_held_slots END,
    'createdAt', ${iso(`${alias}.created_at`)}, 'updatedAt', ${iso(`${alias}.updated_at`)})`;
}

/**
 * A data-modifying CTE body that inserts one event of `type` per row of `from`, with `data`
 * (an expression over `from`'s rows). The writing transaction's id orders the event feed.
 */
export function insertEvents(type: EventType, data: string, from: string): string {
  return `INSERT INTO events (id, transaction_id, type, data)
  SELECT gen_random_uuid(), pg_current_xact_id()::text::bigint, '${type}', ${data} FROM ${from}`;
}
