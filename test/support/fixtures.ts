import { Client } from 'pg';
import request from 'supertest';
import type { TestApp } from './test-app';

export async function createMatch(t: TestApp, capacity: number, title = 'Match'): Promise<string> {
  const response = await request(t.server)
    .post('/api/v1/matches')
    .set('Authorization', `Bearer ${t.token('admin', { admin: true })}`)
    .send({ title, startsAt: '2026-12-01T18:30:00Z', capacity })
    .expect(201);
  return (response.body as { id: string }).id;
}

export interface MatchCounters {
  capacity: number;
  bookedSlots: number;
  confirmedSlots: number;
  confirmedBookings: number;
}

/** Reads the counters straight from the database: what the invariants are checked against. */
export async function matchCounters(t: TestApp, matchId: string): Promise<MatchCounters> {
  const [row] = await t.dataSource.query<Array<{ capacity: number; booked_slots: number; confirmed_slots: string; confirmed_bookings: string }>>(
    `SELECT m.capacity, m.booked_slots,
            COALESCE(SUM(b.slots) FILTER (WHERE b.status = 'confirmed'), 0) AS confirmed_slots,
            COUNT(b.id) FILTER (WHERE b.status = 'confirmed') AS confirmed_bookings
       FROM matches m LEFT JOIN bookings b ON b.match_id = m.id
      WHERE m.id = $1
      GROUP BY m.id`,
    [matchId],
  );
  if (!row) throw new Error(`match ${matchId} not found`);
  return {
    capacity: row.capacity,
    bookedSlots: row.booked_slots,
    confirmedSlots: Number(row.confirmed_slots),
    confirmedBookings: Number(row.confirmed_bookings),
  };
}

/** Locks the match row from another session (in an open transaction), so that requests pile up behind it; ROLLBACK and end() the client to free it. */
export async function lockMatchRow(databaseUrl: string, matchId: string): Promise<Client> {
  const holder = new Client({ connectionString: databaseUrl });
  await holder.connect();
  await holder.query('BEGIN');
  await holder.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
  return holder;
}

/**
 * Waits until the webhook dispatcher's cursor has passed the events about `resourceId`, running
 * `dispatch` meanwhile when given. The feed holds an event back while any older transaction on
 * the server still runs (other test files' included), so this can take a moment under load.
 */
export async function untilDispatched(t: Pick<TestApp, 'dataSource'>, resourceId: string, dispatch?: () => Promise<unknown>): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    await dispatch?.();
    const [row] = await t.dataSource.query<Array<{ passed: boolean }>>(
      `SELECT bool_and((c.transaction_id, c.position) >= (e.transaction_id, e.position)) AS passed
         FROM events e, event_cursors c WHERE c.name = 'webhook-dispatch' AND e.data->>'id' = $1`,
      [resourceId],
    );
    if (row?.passed) return;
    if (Date.now() > deadline) throw new Error(`the webhook dispatcher did not pass the events of ${resourceId} within 15 s`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Waits until `count` sessions of the test's database wait for a heavyweight lock (a row lock, in these tests). */
export async function untilLockWaiters(t: Pick<TestApp, 'dataSource'>, count: number): Promise<void> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const [row] = await t.dataSource.query<Array<{ waiting: number }>>(
      `SELECT count(*)::int AS waiting FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`,
    );
    if ((row?.waiting ?? 0) >= count) return;
    if (Date.now() > deadline) throw new Error(`no ${count} session(s) waited for a lock within 5 s`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
