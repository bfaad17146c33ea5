/**
 * The slot counters of a match: `booked_slots` and `held_slots` on its row, kept equal to the
 * sums of its confirmed bookings and active holds, and changed only by the slot ledger
 * (slot-ledger.ts) under the match row lock.
 *
 * Two held figures exist and are named apart:
 * - the stored counter (`storedHeldSlots`, column held_slots) counts every active hold, including
 *   holds whose time ran out but that no one has released yet;
 * - the live figure (`liveHeldSlots`, LIVE_HELD_SLOTS_SQL) leaves those out. It is what the API
 *   shows as `heldSlots` and what availability means.
 */

/** The counters of a match whose row is locked: what a write needs to decide. */
export interface LockedMatch {
  id: string;
  capacity: number;
  bookedSlots: number;
  /** The stored counter: may include expired holds not yet released. */
  storedHeldSlots: number;
  /** The most slots one customer may have in the match (confirmed bookings and live holds); null: no limit. */
  maxSlotsPerCustomer: number | null;
}

/** The slots one customer has in the match `m` (an alias in scope): confirmed bookings and live holds. */
export function customerSlotsSql(match: string, customer: string): string {
  return `(SELECT COALESCE(SUM(b.slots), 0) FROM bookings b WHERE b.match_id = ${match} AND b.customer_id = ${customer} AND b.status = 'confirmed')
        + (SELECT COALESCE(SUM(h.slots), 0) FROM holds h WHERE h.match_id = ${match} AND h.customer_id = ${customer} AND h.status = 'active' AND h.expires_at > now())`;
}

/** The live held slots of the `matches` row in scope, as a select-list expression. */
export const LIVE_HELD_SLOTS_SQL = `held_slots - (SELECT COALESCE(SUM(h.slots), 0) FROM holds h
                 WHERE h.match_id = matches.id AND h.status = 'active' AND h.expires_at <= now())::int`;

/** Free slots: capacity less booked and held slots. With the live held figure, what a customer can book. */
export function freeSlots(counters: { capacity: number; bookedSlots: number; heldSlots: number }): number {
  return counters.capacity - counters.bookedSlots - counters.heldSlots;
}
