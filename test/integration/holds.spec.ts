import { Client } from 'pg';
import request from 'supertest';
import { HoldSweeper } from '../../src/holds/hold-sweeper';
import { ReconciliationJob } from '../../src/inventory/reconciliation.job';
import { createMatch } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/test-app';

/** Holds: reserve now, confirm later; an expired hold never blocks a booking. */
describe('holds', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ HOLD_TTL_MS: '60000', HOLD_SWEEP_INTERVAL_MS: '0', RECONCILE_INTERVAL_MS: '0' });
  });
  afterAll(async () => {
    await t.close();
  });

  const as = (customer: string) => `Bearer ${t.token(customer)}`;
  const hold = (matchId: string, slots: number, customer = 'alice') =>
    request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', as(customer)).send({ slots });
  const book = (matchId: string, slots: number, customer = 'bob') =>
    request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as(customer)).send({ slots });
  const confirm = (holdId: string, customer = 'alice') => request(t.server).post(`/api/v1/holds/${holdId}/confirm`).set('Authorization', as(customer));
  const release = (holdId: string, customer = 'alice') => request(t.server).delete(`/api/v1/holds/${holdId}`).set('Authorization', as(customer));
  const match = async (matchId: string) =>
    (await request(t.server).get(`/api/v1/matches/${matchId}`).set('Authorization', as('alice')).expect(200)).body as {
      bookedSlots: number;
      heldSlots: number;
      availableSlots: number;
    };
  const counters = async (matchId: string) => {
    const [row] = await t.dataSource.query<[{ booked_slots: number; held_slots: number; confirmed: string; active: string }]>(
      `SELECT m.booked_slots, m.held_slots,
              (SELECT COALESCE(SUM(slots), 0) FROM bookings WHERE match_id = m.id AND status = 'confirmed') AS confirmed,
              (SELECT COALESCE(SUM(slots), 0) FROM holds WHERE match_id = m.id AND status = 'active') AS active
         FROM matches m WHERE m.id = $1`,
      [matchId],
    );
    return { booked: row.booked_slots, held: row.held_slots, confirmed: Number(row.confirmed), active: Number(row.active) };
  };
  const expireHold = (holdId: string) => t.dataSource.query(`UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1`, [holdId]);

  it('should hold slots for the configured time and count them against availability', async () => {
    const matchId = await createMatch(t, 5);
    const response = await hold(matchId, 3).expect(201);

    expect(response.body).toMatchObject({ matchId, customerId: 'alice', slots: 3, status: 'active', bookingId: null });
    const ttl = Date.parse(response.body.expiresAt as string) - Date.parse(response.body.createdAt as string);
    expect(ttl).toBeGreaterThan(59_000);
    expect(ttl).toBeLessThanOrEqual(60_000);
    expect(await match(matchId)).toMatchObject({ bookedSlots: 0, heldSlots: 3, availableSlots: 2 });
    await book(matchId, 3).expect(409).expect((r) => expect(r.body).toMatchObject({ availableSlots: 2 }));
    await hold(matchId, 3, 'carol').expect(409);
  });

  it('should confirm a hold into a booking once, moving its slots from held to booked', async () => {
    const matchId = await createMatch(t, 5);
    const held = (await hold(matchId, 2).expect(201)).body as { id: string };

    const booking = await confirm(held.id).expect(201);
    const again = await confirm(held.id).expect(409);

    expect(booking.body).toMatchObject({ matchId, customerId: 'alice', slots: 2, status: 'confirmed' });
    expect(again.body).toMatchObject({ type: '/problems/hold-not-active', holdStatus: 'confirmed', bookingId: booking.body.id });
    expect(await match(matchId)).toMatchObject({ bookedSlots: 2, heldSlots: 0, availableSlots: 3 });
    expect(await counters(matchId)).toEqual({ booked: 2, held: 0, confirmed: 2, active: 0 });
  });

  it('should release a hold at once, idempotently, and refuse to confirm it afterwards', async () => {
    const matchId = await createMatch(t, 5);
    const held = (await hold(matchId, 4).expect(201)).body as { id: string };

    await release(held.id).expect(204);
    await release(held.id).expect(204);

    expect(await match(matchId)).toMatchObject({ heldSlots: 0, availableSlots: 5 });
    await confirm(held.id).expect(409);
    expect(await counters(matchId)).toEqual({ booked: 0, held: 0, confirmed: 0, active: 0 });
  });

  it('should never let an expired hold block a booking, even before any sweep', async () => {
    const matchId = await createMatch(t, 4);
    const held = (await hold(matchId, 4).expect(201)).body as { id: string };
    await expireHold(held.id);

    expect(await match(matchId)).toMatchObject({ heldSlots: 0, availableSlots: 4 });
    await book(matchId, 4).expect(201);

    expect(await counters(matchId)).toEqual({ booked: 4, held: 0, confirmed: 4, active: 0 });
    const [{ status }] = await t.dataSource.query<[{ status: string }]>('SELECT status FROM holds WHERE id = $1', [held.id]);
    expect(status).toBe('expired');
  });

  it('should answer 410 to confirming an expired hold and give its slots back', async () => {
    const matchId = await createMatch(t, 4);
    const held = (await hold(matchId, 3).expect(201)).body as { id: string };
    await expireHold(held.id);

    const response = await confirm(held.id).expect(410);

    expect(response.body).toMatchObject({ type: '/problems/hold-expired', holdId: held.id });
    expect(await counters(matchId)).toEqual({ booked: 0, held: 0, confirmed: 0, active: 0 });
  });

  it('should answer 410 to confirming a hold that the sweeper already marked expired', async () => {
    const matchId = await createMatch(t, 4);
    const held = (await hold(matchId, 3).expect(201)).body as { id: string };
    await expireHold(held.id);
    await expect(t.app.get(HoldSweeper).runOnce()).resolves.toBeGreaterThanOrEqual(1);
    const [{ status }] = await t.dataSource.query<[{ status: string }]>('SELECT status FROM holds WHERE id = $1', [held.id]);
    expect(status).toBe('expired');

    const response = await confirm(held.id).expect(410);

    expect(response.body).toMatchObject({ type: '/problems/hold-expired', holdId: held.id });
    expect(await counters(matchId)).toEqual({ booked: 0, held: 0, confirmed: 0, active: 0 });
  });

  it('should hide another customer’s hold behind 404 and refuse a capacity below booked plus held slots', async () => {
    const matchId = await createMatch(t, 5);
    const held = (await hold(matchId, 2).expect(201)).body as { id: string };
    await book(matchId, 2).expect(201);

    await confirm(held.id, 'mallory').expect(404);
    await release(held.id, 'mallory').expect(404);
    const patch = await request(t.server)
      .patch(`/api/v1/matches/${matchId}`)
      .set('Authorization', `Bearer ${t.token('admin', { admin: true })}`)
      .send({ capacity: 3 })
      .expect(409);
    expect(patch.body).toMatchObject({ type: '/problems/capacity-below-booked', bookedSlots: 2, heldSlots: 2 });
  });

  it('should sweep expired holds on one instance at a time and leave the counters equal to their holds', async () => {
    const matches = [await createMatch(t, 3), await createMatch(t, 3), await createMatch(t, 3)];
    const holds = await Promise.all(matches.map(async (matchId) => ((await hold(matchId, 2).expect(201)).body as { id: string }).id));
    const live = (await hold(matches[0]!, 1).expect(201)).body as { id: string };
    for (const id of holds) await expireHold(id);

    const blocker = new Client({ connectionString: t.databaseUrl });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT pg_advisory_xact_lock(7317003)');
      await expect(t.app.get(HoldSweeper).runOnce()).resolves.toBeNull(); // another instance is sweeping
      await blocker.query('ROLLBACK');
    } finally {
      await blocker.end();
    }
    await expect(t.app.get(HoldSweeper).runOnce()).resolves.toBe(3);

    for (const matchId of matches) {
      const c = await counters(matchId);
      expect(c.held).toBe(c.active);
    }
    expect((await counters(matches[0]!)).active).toBe(1);
    expect(live.id).toBeDefined();
    await expect(t.app.get(ReconciliationJob).runOnce()).resolves.toMatchObject({ ran: true, mismatches: [] });
  });

  it('should keep booked and held counters equal to their rows through a race of holds, bookings, confirmations and releases', async () => {
    const matchId = await createMatch(t, 30);
    const customers = Array.from({ length: 12 }, (_, i) => `racer-${i}`);
    const results = await Promise.all(
      customers.flatMap((customer, i) => [
        book(matchId, 1 + (i % 3), customer).then((r) => r.status),
        hold(matchId, 1 + (i % 2), customer).then(async (r) => {
          if (r.status !== 201) return r.status;
          const id = (r.body as { id: string }).id;
          const next = i % 3 === 0 ? await release(id, customer) : i % 3 === 1 ? await confirm(id, customer) : undefined;
          return next?.status ?? r.status;
        }),
      ]),
    );

    for (const status of results) expect([201, 204, 409]).toContain(status);
    const c = await counters(matchId);
    expect(c.booked).toBe(c.confirmed);
    expect(c.held).toBe(c.active);
    expect(c.booked + c.held).toBeLessThanOrEqual(30);
  });
});
