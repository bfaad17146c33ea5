import type { Pool } from 'pg';

export interface CheckResult {
  /** The scenario step it was run after, e.g. "hot @ 64". */
  scenario: string;
  name: string;
  passed: boolean;
  detail: string;
}

/**
 * The two invariants the service promises, over every match in the bench database: the counter
 * equals the sum of the confirmed bookings' slots, and booked + held never exceeds capacity.
 * Run after every step, while nothing else writes.
 */
export async function checkDatabaseInvariants(db: Pool, scenario: string): Promise<CheckResult[]> {
  const { rows } = await db.query<{ matches: string; drifted: string; overbooked: string; example: string | null }>(`
    WITH confirmed AS (
      SELECT match_id, SUM(slots) AS slots FROM bookings WHERE status = 'confirmed' GROUP BY match_id
    ), compared AS (
      SELECT m.id, m.capacity, m.booked_slots, m.held_slots, COALESCE(c.slots, 0) AS confirmed_slots
        FROM matches m LEFT JOIN confirmed c ON c.match_id = m.id
    )
    SELECT count(*) AS matches,
           count(*) FILTER (WHERE booked_slots <> confirmed_slots) AS drifted,
           count(*) FILTER (WHERE booked_slots + held_slots > capacity) AS overbooked,
           (SELECT format('match %s: booked_slots %s, confirmed slots %s, held %s, capacity %s', id, booked_slots, confirmed_slots, held_slots, capacity)
              FROM compared WHERE booked_slots <> confirmed_slots OR booked_slots + held_slots > capacity LIMIT 1) AS example
      FROM compared`);
  const row = rows[0]!;
  const drifted = Number(row.drifted);
  const overbooked = Number(row.overbooked);
  const example = row.example ? `; e.g. ${row.example}` : '';
  return [
    {
      scenario,
      name: 'counters match bookings',
      passed: drifted === 0,
      detail: `${drifted} of ${row.matches} matches have booked_slots different from the sum of their confirmed bookings${drifted > 0 ? example : ''}`,
    },
    {
      scenario,
      name: 'no overbooking',
      passed: overbooked === 0,
      detail: `${overbooked} of ${row.matches} matches have booked_slots + held_slots > capacity${overbooked > 0 ? example : ''}`,
    },
  ];
}

export function checkNoServerErrors(scenario: string, statusCounts: Record<string, number>): CheckResult {
  const serverErrors = Object.entries(statusCounts).filter(([status]) => status.startsWith('5'));
  const total = serverErrors.reduce((sum, [, count]) => sum + count, 0);
  return {
    scenario,
    name: 'no 5xx responses',
    passed: total === 0,
    detail: total === 0 ? 'no 5xx responses' : `${total} 5xx responses (${serverErrors.map(([status, count]) => `${count} × ${status}`).join(', ')})`,
  };
}

/** Exactly `expected` of something: a count of responses or of booked slots. */
export function checkExactCount(scenario: string, name: string, actual: number, expected: number): CheckResult {
  return { scenario, name, passed: actual === expected, detail: `${actual} (expected ${expected})` };
}

/** The booked slots and confirmed bookings of one match, for the sell-out and pgbench checks. */
export async function matchTotals(db: Pool, matchId: string): Promise<{ bookedSlots: number; confirmedBookings: number }> {
  const { rows } = await db.query<{ booked_slots: number; confirmed: string }>(
    `SELECT booked_slots, (SELECT count(*) FROM bookings WHERE match_id = $1 AND status = 'confirmed') AS confirmed
       FROM matches WHERE id = $1`,
    [matchId],
  );
  const row = rows[0];
  if (!row) throw new Error(`Match ${matchId} is missing from the bench database`);
  return { bookedSlots: row.booked_slots, confirmedBookings: Number(row.confirmed) };
}

/** Bookings of one customer id (pgbench books as one customer), to compare with what pgbench reports. */
export async function countBookingsOf(db: Pool, customerId: string): Promise<number> {
  const { rows } = await db.query<{ count: string }>('SELECT count(*) AS count FROM bookings WHERE customer_id = $1', [customerId]);
  return Number(rows[0]!.count);
}

/** Every check of the run, in order; failures are printed as they happen. */
export class CheckLog {
  readonly results: CheckResult[] = [];

  constructor(private readonly print: (message: string) => void) {}

  record(results: CheckResult | CheckResult[]): void {
    for (const result of Array.isArray(results) ? results : [results]) {
      this.results.push(result);
      if (!result.passed) this.print(`CHECK FAILED [${result.scenario}] ${result.name}: ${result.detail}`);
    }
  }

  get failures(): CheckResult[] {
    return this.results.filter((result) => !result.passed);
  }
}
