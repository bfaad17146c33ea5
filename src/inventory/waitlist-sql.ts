import { holdJson, insertEvents, waitlistEntryJson } from '../events/event-sql';
import { HOLD_COLUMNS } from '../holds/hold';
import type { HoldStatus } from '../holds/hold.entity';
import { waitlistEntryColumns } from '../waitlist/waitlist-entry';
import type { WaitlistStatus } from '../waitlist/waitlist-entry.entity';

/**
 * The waitlist's statements, run by the slot ledger with the match rows locked. Offers are holds
 * in the waiting customer's name, so every offer counts once in held_slots and is confirmed,
 * released or expired as a hold; the entry follows its hold in the same statement.
 */

/**
 * Offers the free slots of the given matches to their lines ($1 match ids, $2 offer lifetime in
 * ms). Strictly first come, first served: the entries offered are the longest run from the head
 * of the line whose slots fit in the free slots, so an entry behind one that does not fit yet
 * waits, and freed slots accumulate until the head fits (a large request is never starved by
 * smaller ones behind it). An entry asking for more than the match's capacity (it was lowered
 * after the entry joined) can never be served: it expires instead of blocking the line.
 * Free slots count the stored held counter, so a hold that expired unreleased still counts here
 * (the release that finds it offers its slots). Returns how many offers were made.
 */
export const OFFER_FREED_SLOTS_SQL = `WITH line AS MATERIALIZED (
  SELECT w.id, w.match_id, w.customer_id, w.slots, w.slots > m.capacity AS unservable,
         m.capacity - m.booked_slots - m.held_slots AS free_slots,
         SUM(w.slots) FILTER (WHERE w.slots <= m.capacity) OVER (PARTITION BY w.match_id ORDER BY w.line_number) AS slots_through
    FROM matches m JOIN waitlist_entries w ON w.match_id = m.id AND w.status = 'waiting'
   WHERE m.id = ANY($1::uuid[]) AND m.waiting_entries > 0
),
chosen AS MATERIALIZED (
  SELECT line.*, gen_random_uuid() AS hold_id FROM line WHERE NOT unservable AND slots_through <= free_slots
),
held AS (
  INSERT INTO holds (id, match_id, customer_id, slots, expires_at)
  SELECT hold_id, match_id, customer_id, slots, now() + make_interval(secs => $2 / 1000.0) FROM chosen
  RETURNING ${HOLD_COLUMNS}
),
offered AS (
  UPDATE waitlist_entries w SET status = 'offered', hold_id = held.id, expires_at = held.expires_at
    FROM chosen JOIN held ON held.id = chosen.hold_id
   WHERE w.id = chosen.id
  RETURNING w.*
),
closed AS (
  UPDATE waitlist_entries w SET status = 'expired', resolved_at = now()
    FROM line WHERE w.id = line.id AND line.unservable
  RETURNING w.*
),
counted AS (
  UPDATE matches m SET held_slots = m.held_slots + t.slots, waiting_entries = m.waiting_entries - t.entries
    FROM (SELECT match_id, SUM(slots)::int AS slots, count(*)::int AS entries
            FROM (SELECT match_id, slots FROM chosen UNION ALL SELECT match_id, 0 FROM line WHERE unservable) taken
           GROUP BY match_id) t
   WHERE m.id = t.match_id
),
hold_evented AS (
  ${insertEvents('hold.created', holdJson('held'), 'held')}
),
offer_evented AS (
  ${insertEvents('waitlist.offered', waitlistEntryJson('offered'), 'offered')}
),
close_evented AS (
  ${insertEvents('waitlist.expired', waitlistEntryJson('closed'), 'closed')}
)
SELECT count(*)::int AS offers FROM chosen`;

/** The status of an offer's entry for each status of its hold: set together, and checked by the reconciliation. */
const ENTRY_STATUS_OF_HOLD = { active: 'offered', confirmed: 'accepted', released: 'declined', expired: 'expired' } as const satisfies Record<HoldStatus, WaitlistStatus>;

/** ENTRY_STATUS_OF_HOLD as a FROM item `agreed(hold_status, entry_status)`. */
export const ENTRY_STATUS_OF_HOLD_SQL = `(VALUES ${Object.entries(ENTRY_STATUS_OF_HOLD)
  .map(([hold, entry]) => `('${hold}', '${entry}')`)
  .join(', ')}) AS agreed(hold_status, entry_status)`;

/**
 * Two CTEs (to add to a statement that resolves the holds of the CTE `holds`): close the offers
 * those holds were made for, and write their events.
 */
export function closeOffersSql(holds: string, holdStatus: Exclude<HoldStatus, 'active'>): string {
  const status = ENTRY_STATUS_OF_HOLD[holdStatus];
  return `offers_closed AS (
    UPDATE waitlist_entries w SET status = '${status}', resolved_at = now()
      FROM ${holds} WHERE w.hold_id = ${holds}.id AND w.status = 'offered'
    RETURNING w.*
  ), offers_evented AS (
    ${insertEvents(`waitlist.${status}`, waitlistEntryJson('offers_closed'), 'offers_closed')}
  )`;
}

/** Joins the line of a locked match ($1 entry id, $2 match id, $3 customer id, $4 slots); returns the entry. */
export const JOIN_LINE_SQL = `WITH joined AS (
  INSERT INTO waitlist_entries (id, match_id, customer_id, slots) VALUES ($1, $2, $3, $4)
  RETURNING *
), counted AS (
  UPDATE matches SET waiting_entries = waiting_entries + 1 WHERE id = $2
), evented AS (
  ${insertEvents('waitlist.joined', waitlistEntryJson('joined'), 'joined')}
)
SELECT ${waitlistEntryColumns('joined')} FROM joined`;

/** Takes a waiting entry out of the line of its locked match ($1 entry id, $2 match id). */
export const LEAVE_LINE_SQL = `WITH left_line AS (
  UPDATE waitlist_entries SET status = 'left', resolved_at = now()
   WHERE id = $1 AND match_id = $2 AND status = 'waiting'
  RETURNING *
), counted AS (
  UPDATE matches SET waiting_entries = waiting_entries - 1 FROM left_line WHERE matches.id = left_line.match_id
), evented AS (
  ${insertEvents('waitlist.left', waitlistEntryJson('left_line'), 'left_line')}
)
SELECT count(*)::int AS entries FROM left_line`;
