/**
 * The slot counters of a match: `booked_slots` and `held_slots` on its row, kept equal to the
 * sums of its confirmed bookings and active holds, and `waiting_entries`, the number of its
 * waitlist entries still waiting; all changed only by the slot ledger (slot-ledger.ts) under the
 * match row lock.
 *
 * Two held figures exist and are named apart:
 * - the stored counter (`storedHeldSlots`, column held_slots) counts every active hold, including
 *   holds whose time ran out but that no one has released yet;
 * - the live figure (`liveHeldSlots`, LIVE_HELD_SLOTS_SQL) leaves those out. It is what the API
 *   shows as `heldSlots` and what availability means.
 *
 * While entries wait, the free slots belong to the line: nobody can book or hold them, and they
 * go to the entries as offers, first come, first served (see SlotLedger.offerFreedSlots).
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
  waitingEntries: number;
}

/** The slots one customer has in the match `m` (an alias in scope): confirmed bookings and live holds (waitlist offers are holds). */
export function customerSlotsSql(match: string, customer: string): string {
  return `(SELECT COALESCE(SUM(b.slots), 0) FROM bookings b WHERE b.match_id = ${match} AND b.customer_id = ${customer} AND b.status = 'confirmed')
        + (SELECT COALESCE(SUM(h.slots), 0) FROM holds h WHERE h.match_id = ${match} AND h.customer_id = ${customer} AND h.status = 'active' AND h.expires_at > now())`;
}

/** The live held slots of the `matches` row in scope, as a select-list expression. */
export const LIVE_HELD_SLOTS_SQL = `held_slots - (SELECT COALESCE(SUM(h.slots), 0) FROM holds h
                 WHERE h.match_id = matches.id AND h.status = 'active' AND h.expires_at <= now())::int`;

/** Free slots: capacity less booked and held slots (with the live held figure, whether or not expired holds were released). */
export function freeSlots(counters: { capacity: number; bookedSlots: number; heldSlots: number }): number {
  return counters.capacity - counters.bookedSlots - counters.heldSlots;
}

/** What a customer can book or hold now: the free slots, or none while waitlist entries wait for them. */
export function availableSlots(counters: { capacity: number; bookedSlots: number; heldSlots: number; waitingEntries: number }): number {
  return counters.waitingEntries > 0 ? 0 : freeSlots(counters);
}
