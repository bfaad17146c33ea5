import { Client } from 'pg';
import request from 'supertest';
import type { QueryRunner } from 'typeorm';
import { SlotLedger } from '../../src/inventory/slot-ledger';
import { HoldSweeper } from '../../src/holds/hold-sweeper';
import { EventPurger } from '../../src/events/event-purger';
import { Metrics } from '../../src/observability/metrics';
import { WebhookDispatcher } from '../../src/webhooks/webhook-dispatcher';
import { generateWebhookSecret } from '../../src/webhooks/webhook-signature';
import { createMatch, untilDispatched, untilLockWaiters } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/test-app';

interface StoredEvent {
  id: string;
  type: string;
  occurredAt: string;
  data: Record<string, unknown>;
}

/** The outbox: every committed change leaves exactly its events, in the same transaction; the feed never skips one. */
describe('events', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ HOLD_SWEEP_INTERVAL_MS: '0', RECONCILE_INTERVAL_MS: '0' });
  });
  afterAll(async () => {
    await t.close();
  });

  const admin = () => `Bearer ${t.token('admin', { admin: true })}`;
  const as = (customer: string) => `Bearer ${t.token(customer)}`;

  /** The events about a resource, oldest first, straight from the table. */
  async function eventsAbout(id: string): Promise<StoredEvent[]> {
    const rows = await t.dataSource.query<Array<{ id: string; type: string; occurred_at: Date; data: Record<string, unknown> }>>(
      `SELECT id, type, occurred_at, data FROM events WHERE data->>'id' = $1 ORDER BY position`,
      [id],
    );
    return rows.map((row) => ({ id: row.id, type: row.type, occurredAt: row.occurred_at.toISOString(), data: row.data }));
  }

  /**
   * Reads the feed from `after` until `done` holds for the events read. The feed shows an event
   * once every older transaction on the server has ended, other test files' included, so under
   * load this can take a moment.
   */
  async function readFeedUntil(after: string | undefined, done: (events: StoredEvent[]) => boolean, limit = 1000): Promise<{ events: StoredEvent[]; nextCursor: string | undefined }> {
    const events: StoredEvent[] = [];
    let cursor = after;
    const deadline = Date.now() + 20_000;
    while (!done(events)) {
      if (Date.now() > deadline) throw new Error(`the feed did not show the expected events within 20 s (read ${events.length})`);
      const page = await feedPage(cursor, limit);
      events.push(...page.items);
      cursor = page.nextCursor;
      if (page.items.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    return { events, nextCursor: cursor };
  }

  async function feedPage(after: string | undefined, limit = 1000): Promise<{ items: StoredEvent[]; nextCursor: string }> {
    const response = await request(t.server)
      .get('/api/v1/admin/events')
      .query({ ...(after !== undefined && { after }), limit })
      .set('Authorization', admin())
      .expect(200);
    return response.body as { items: StoredEvent[]; nextCursor: string };
  }

  it('should write exactly the events of each committed change, with the resource as the API answered it', async () => {
    const created = await request(t.server).post('/api/v1/matches').set('Authorization', admin()).send({ title: 'Final', startsAt: '2026-12-01T18:30:00Z', capacity: 5 }).expect(201);
    const matchId = (created.body as { id: string }).id;
    const otherMatchId = await createMatch(t, 5);
    const patched = await request(t.server).patch(`/api/v1/matches/${matchId}`).set('Authorization', admin()).send({ capacity: 6 }).expect(200);
    expect((await eventsAbout(matchId)).map((e) => [e.type, e.data])).toEqual([
      ['match.created', created.body],
      ['match.updated', patched.body],
    ]);

    const booked = await request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as('ann')).send({ slots: 2 }).expect(201);
    const bookingId = (booked.body as { id: string }).id;
    const moved = await request(t.server).post(`/api/v1/bookings/${bookingId}/reschedule`).set('Authorization', as('ann')).send({ toMatchId: otherMatchId }).expect(200);
    const cancelled = await request(t.server).post(`/api/v1/bookings/${bookingId}/cancel`).set('Authorization', as('ann')).expect(200);
    await request(t.server).post(`/api/v1/bookings/${bookingId}/cancel`).set('Authorization', as('ann')).expect(200); // changes nothing
    expect((await eventsAbout(bookingId)).map((e) => [e.type, e.data])).toEqual([
      ['booking.confirmed', booked.body],
      ['booking.rescheduled', { ...(moved.body as object), fromMatchId: matchId }],
      ['booking.cancelled', cancelled.body],
    ]);

    const held = await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', as('ann')).send({ slots: 1 }).expect(201);
    const holdId = (held.body as { id: string }).id;
    const confirmed = await request(t.server).post(`/api/v1/holds/${holdId}/confirm`).set('Authorization', as('ann')).expect(201);
    const confirmedHold = await request(t.server).get(`/api/v1/holds/${holdId}`).set('Authorization', as('ann')).expect(200);
    expect((await eventsAbout(holdId)).map((e) => [e.type, e.data])).toEqual([
      ['hold.created', held.body],
      ['hold.confirmed', confirmedHold.body],
    ]);
    expect((await eventsAbout((confirmed.body as { id: string }).id)).map((e) => [e.type, e.data])).toEqual([['booking.confirmed', confirmed.body]]);

    const released = (await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', as('ann')).send({ slots: 1 }).expect(201)).body as { id: string };
    await request(t.server).delete(`/api/v1/holds/${released.id}`).set('Authorization', as('ann')).expect(204);
    await request(t.server).delete(`/api/v1/holds/${released.id}`).set('Authorization', as('ann')).expect(204); // changes nothing
    const releasedHold = await request(t.server).get(`/api/v1/holds/${released.id}`).set('Authorization', as('ann')).expect(200);
    expect((await eventsAbout(released.id)).map((e) => [e.type, e.data])).toEqual([
      ['hold.created', expect.objectContaining({ id: released.id, status: 'active' })],
      ['hold.released', releasedHold.body],
    ]);

    const expiring = (await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', as('ann')).send({ slots: 1 }).expect(201)).body as { id: string };
    await t.dataSource.query(`UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1`, [expiring.id]);
    await t.app.get(HoldSweeper).runOnce();
    const expiredHold = await request(t.server).get(`/api/v1/holds/${expiring.id}`).set('Authorization', as('ann')).expect(200);
    expect((await eventsAbout(expiring.id)).map((e) => [e.type, e.data])).toEqual([
      ['hold.created', expect.objectContaining({ id: expiring.id })],
      ['hold.expired', expiredHold.body],
    ]);
  });

  it('should write no event for a refusal, an unknown match or a rolled-back attempt', async () => {
    const matchId = await createMatch(t, 1);
    const before = await countEvents();
    await request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as('bob')).send({ slots: 2 }).expect(409);
    await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', as('bob')).send({ slots: 2 }).expect(409);
    await request(t.server).post('/api/v1/matches/00000000-0000-4000-8000-000000000000/bookings').set('Authorization', as('bob')).send({ slots: 1 }).expect(404);
    await request(t.server).patch(`/api/v1/matches/${matchId}`).set('Authorization', admin()).send({ capacity: -1 }).expect(400);
    expect(await countEvents()).toBe(before);
  });

  it('should leave one event for a reschedule rerun after a deadlock', async () => {
    const [low, high] = [await createMatch(t, 5), await createMatch(t, 5)].sort();
    const booking = (await request(t.server).post(`/api/v1/matches/${low}/bookings`).set('Authorization', as('dee')).send({ slots: 1 }).expect(201)).body as { id: string };
    const deadlocksBefore = await retries('reschedule-booking', 'deadlock');

    // Another session holds the higher row; the reschedule locks the lower, then waits for the higher;
    // the other session then asks for the lower: a deadlock, which the reschedule's backend detects first.
    const other = new Client({ connectionString: t.databaseUrl });
    await other.connect();
    try {
      await other.query('BEGIN');
      await other.query(`SET LOCAL deadlock_timeout = '10s'`);
      await other.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [high]);
      const reschedule = request(t.server).post(`/api/v1/bookings/${booking.id}/reschedule`).set('Authorization', as('dee')).send({ toMatchId: high }).then((r) => r);
      await untilLockWaiters(t, 1);
      const otherLocksLow = other.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [low]);
      await otherLocksLow; // granted once the reschedule's backend was chosen as the deadlock victim
      await other.query('ROLLBACK');
      expect((await reschedule).status).toBe(200);
    } finally {
      await other.end();
    }

    expect(await retries('reschedule-booking', 'deadlock')).toBe(deadlocksBefore + 1);
    expect((await eventsAbout(booking.id)).map((e) => e.type)).toEqual(['booking.confirmed', 'booking.rescheduled']);
  });

  it('should never skip, in the feed, an event whose transaction commits after later ones', async () => {
    const matchId = await createMatch(t, 100);
    const lateMatchId = await createMatch(t, 100);
    let cursor = (await feedPage(undefined)).nextCursor;
    const seen: string[] = [];

    // A transaction writes an event and stays open...
    const late: QueryRunner = t.dataSource.createQueryRunner();
    await late.connect();
    let lateHoldId: string | undefined;
    try {
      await late.startTransaction();
      lateHoldId = (await t.app.get(SlotLedger).createHold(late, { id: crypto.randomUUID(), matchId: lateMatchId, customerId: 'late', slots: 1, ttlMs: 60_000 })).id;
      // ...while later transactions commit theirs.
      const early = await Promise.all(
        [1, 2, 3].map(async (i) => ((await request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as(`early-${i}`)).send({ slots: 1 }).expect(201)).body as { id: string }).id),
      );
      const whileOpen = await feedPage(cursor);
      // Nothing past the open transaction is handed out yet, so the cursor cannot pass it.
      expect(whileOpen.items.filter((e) => early.includes(e.data.id as string))).toEqual([]);
      seen.push(...whileOpen.items.map((e) => e.id));
      cursor = whileOpen.nextCursor;
      await late.commitTransaction();

      const expected = [lateHoldId, ...early];
      const after = await readFeedUntil(cursor, (events) => expected.every((id) => events.some((e) => e.data.id === id)));
      seen.push(...after.events.map((e) => e.id));
      const ids = after.events.map((e) => e.data.id);
      // The late transaction started first, so its event comes first.
      expect(ids.indexOf(lateHoldId)).toBeLessThan(Math.min(...early.map((id) => ids.indexOf(id))));
      expect((await feedPage(after.nextCursor)).items).toEqual([]);
    } finally {
      if (late.isTransactionActive) await late.rollbackTransaction();
      await late.release();
    }
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('should read the whole feed page by page, each event once, in order', async () => {
    const matchId = await createMatch(t, 1000);
    await Promise.all(Array.from({ length: 40 }, (_, i) => request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as(`pager-${i % 7}`)).send({ slots: 1 }).expect(201)));
    const total = await countEvents();
    const { events: all } = await readFeedUntil(undefined, (events) => events.length >= total, 7);
    expect(all.length).toBe(total);
    expect(new Set(all.map((e) => e.id)).size).toBe(all.length);
    await request(t.server).get('/api/v1/admin/events').query({ after: 'not-a-cursor' }).set('Authorization', admin()).expect(400);
    await request(t.server).get('/api/v1/admin/events').set('Authorization', as('pager-1')).expect(403);
  });

  it('should write exactly one booking.confirmed per 201 in a sell-out race', async () => {
    const matchId = await createMatch(t, 100);
    const responses = await Promise.all(
      Array.from({ length: 300 }, (_, i) => request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as(`racer-${i}`)).send({ slots: 1 }).then((r) => r)),
    );
    const created = responses.filter((r) => r.status === 201).map((r) => r.body as { id: string });
    expect(created).toHaveLength(100);
    expect(responses.filter((r) => r.status === 409)).toHaveLength(200);
    const rows = await t.dataSource.query<Array<{ data: Record<string, unknown> }>>(
      `SELECT data FROM events WHERE type = 'booking.confirmed' AND data->>'matchId' = $1`,
      [matchId],
    );
    expect(rows.map((row) => row.data).sort(byId)).toEqual([...created].sort(byId));
  });

  it('should purge events past their retention, but not those a delivery still waits for or the dispatcher has not passed', async () => {
    // Webhooks dispatched (the job's timer is far off; the test runs it), on a database of its own.
    const app = await startTestApp({ WEBHOOK_DISPATCH_INTERVAL_MS: '3600000', HOLD_SWEEP_INTERVAL_MS: '0', RECONCILE_INTERVAL_MS: '0' });
    try {
      const about = async (id: string) => (await app.dataSource.query<Array<{ type: string }>>(`SELECT type FROM events WHERE data->>'id' = $1`, [id])).map((row) => row.type);
      const dispatch = () => app.app.get(WebhookDispatcher).runOnce();
      const purgeable = await createMatch(app, 1, 'Purgeable');
      await untilDispatched(app, purgeable, dispatch); // passed while no endpoint exists
      await app.dataSource.query(`INSERT INTO webhook_endpoints (url, event_types, secret) VALUES ('http://127.0.0.1:9/never', '{match.created}', $1)`, [generateWebhookSecret()]);
      const awaited = await createMatch(app, 1, 'Awaited');
      await untilDispatched(app, awaited, dispatch); // a pending delivery of its event
      const notDispatched = await createMatch(app, 1, 'Not dispatched yet');
      await app.dataSource.query(`UPDATE events SET occurred_at = now() - interval '30 days'`);

      await expect(app.app.get(EventPurger).runOnce()).resolves.toBeGreaterThanOrEqual(1);
      expect(await about(purgeable)).toEqual([]);
      expect(await about(awaited)).toEqual(['match.created']);
      expect(await about(notDispatched)).toEqual(['match.created']);
    } finally {
      await app.close();
    }
  });

  it('should purge old events without waiting for a dispatcher when webhooks are off', async () => {
    const matchId = await createMatch(t, 1, 'No webhooks');
    await t.dataSource.query(`UPDATE events SET occurred_at = now() - interval '30 days' WHERE data->>'id' = $1`, [matchId]);
    await expect(t.app.get(EventPurger).runOnce()).resolves.toBeGreaterThanOrEqual(1);
    expect(await eventsAbout(matchId)).toEqual([]);
  });

  async function countEvents(): Promise<number> {
    const [row] = await t.dataSource.query<[{ count: number }]>('SELECT count(*)::int AS count FROM events');
    return row.count;
  }

  async function retries(transaction: string, reason: string): Promise<number> {
    const metric = await t.app.get(Metrics).transactionRetries.get();
    return metric.values.find((v) => v.labels.transaction === transaction && v.labels.reason === reason)?.value ?? 0;
  }
});

function byId(a: { id?: unknown }, b: { id?: unknown }): number {
  return String(a.id).localeCompare(String(b.id));
}
