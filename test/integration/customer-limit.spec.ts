import request from 'supertest';
import { Reservations } from '../../src/bookings/reservations';
import { CustomerLimitReachedError } from '../../src/errors/domain-errors';
import { startTestApp, type TestApp } from '../support/test-app';

/** maxSlotsPerCustomer: one customer cannot take more of a match, however the requests race. */
describe('the per-customer limit of a match', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ HOLD_SWEEP_INTERVAL_MS: '0', RECONCILE_INTERVAL_MS: '0' });
  });
  afterAll(async () => {
    await t.close();
  });

  const admin = () => `Bearer ${t.token('admin', { admin: true })}`;
  const as = (customer: string) => `Bearer ${t.token(customer)}`;

  async function limitedMatch(capacity: number, maxSlotsPerCustomer: number | null): Promise<string> {
    const response = await request(t.server)
      .post('/api/v1/matches')
      .set('Authorization', admin())
      .send({ title: 'Limited', startsAt: '2026-12-01T18:30:00Z', capacity, maxSlotsPerCustomer })
      .expect(201);
    expect(response.body).toMatchObject({ maxSlotsPerCustomer });
    return (response.body as { id: string }).id;
  }

  const book = (matchId: string, customer: string, slots = 1) =>
    request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as(customer)).send({ slots }).then((r) => r);
  const hold = (matchId: string, customer: string, slots = 1) =>
    request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', as(customer)).send({ slots }).then((r) => r);

  /** The customer's confirmed and live held slots in the match, and whether the counters equal the sums of the rows. */
  async function slotsOf(matchId: string, customer: string): Promise<{ customerSlots: number; countersAgree: boolean }> {
    const [row] = await t.dataSource.query<[{ customer_slots: number; counters_agree: boolean }]>(
      `SELECT (SELECT COALESCE(SUM(slots), 0) FROM bookings WHERE match_id = m.id AND customer_id = $2 AND status = 'confirmed')::int
            + (SELECT COALESCE(SUM(slots), 0) FROM holds WHERE match_id = m.id AND customer_id = $2 AND status = 'active' AND expires_at > now())::int AS customer_slots,
              m.booked_slots = (SELECT COALESCE(SUM(slots), 0) FROM bookings WHERE match_id = m.id AND status = 'confirmed')
          AND m.held_slots = (SELECT COALESCE(SUM(slots), 0) FROM holds WHERE match_id = m.id AND status = 'active')
          AND m.booked_slots + m.held_slots <= m.capacity AS counters_agree
         FROM matches m WHERE m.id = $1`,
      [matchId, customer],
    );
    return { customerSlots: row.customer_slots, countersAgree: row.counters_agree };
  }

  it('should confirm exactly 4 of 20 concurrent 1-slot bookings of one customer on a match limited to 4', async () => {
    const matchId = await limitedMatch(100, 4);
    const responses = await Promise.all(Array.from({ length: 20 }, () => book(matchId, 'hoarder')));

    expect(responses.filter((r) => r.status === 201)).toHaveLength(4);
    const refused = responses.filter((r) => r.status === 409);
    expect(refused).toHaveLength(16);
    for (const r of refused) {
      expect(r.body).toMatchObject({ type: '/problems/customer-limit-reached', matchId, limit: 4, current: 4, requestedSlots: 1 });
    }
    expect(await slotsOf(matchId, 'hoarder')).toEqual({ customerSlots: 4, countersAgree: true });
    await book(matchId, 'someone-else').then((r) => expect(r.status).toBe(201));
  });

  it('should keep one customer within the limit while bookings, holds and confirmations race', async () => {
    const matchId = await limitedMatch(100, 5);
    const attempts = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        if (i % 3 === 0) return (await book(matchId, 'mixer', 1 + (i % 2))).status;
        const held = await hold(matchId, 'mixer', 1);
        if (held.status !== 201 || i % 3 === 1) return held.status;
        const confirmed = await request(t.server).post(`/api/v1/holds/${(held.body as { id: string }).id}/confirm`).set('Authorization', as('mixer'));
        return confirmed.status;
      }),
    );
    for (const status of attempts) expect([201, 409]).toContain(status);
    const { customerSlots, countersAgree } = await slotsOf(matchId, 'mixer');
    expect(customerSlots).toBeLessThanOrEqual(5);
    expect(attempts).toContain(201);
    expect(countersAgree).toBe(true);
  });

  it('should count two requests of one customer decided in the same batch together', async () => {
    const matchId = await limitedMatch(100, 4);
    const outcomes = await t.app.get(Reservations).reserve([
      { matchId, customerId: 'pair', slots: 3 },
      { matchId, customerId: 'other', slots: 3 },
      { matchId, customerId: 'pair', slots: 2 },
      { matchId, customerId: 'pair', slots: 1 },
    ]);

    expect(outcomes.map((o) => o.ok)).toEqual([true, true, false, true]);
    const refused = outcomes[2]!;
    expect(!refused.ok && refused.error).toBeInstanceOf(CustomerLimitReachedError);
    expect(!refused.ok && refused.error).toMatchObject({ limit: 4, current: 3, requestedSlots: 2 });
    expect(await slotsOf(matchId, 'pair')).toEqual({ customerSlots: 4, countersAgree: true });
  });

  it('should refuse a reschedule into a match where the customer would pass its limit', async () => {
    const target = await limitedMatch(100, 2);
    const origin = await limitedMatch(100, null);
    expect((await book(target, 'mover', 2)).status).toBe(201);
    const booking = (await book(origin, 'mover', 1)).body as { id: string };

    const moved = await request(t.server).post(`/api/v1/bookings/${booking.id}/reschedule`).set('Authorization', as('mover')).send({ toMatchId: target });
    expect(moved.status).toBe(409);
    expect(moved.body).toMatchObject({ type: '/problems/customer-limit-reached', limit: 2, current: 2, requestedSlots: 1 });
    expect(await slotsOf(origin, 'mover')).toEqual({ customerSlots: 1, countersAgree: true });
  });

  it('should let the limit be lowered below what a customer has (it only stops new takes), and removed with null', async () => {
    const matchId = await limitedMatch(100, 5);
    expect((await book(matchId, 'keeper', 4)).status).toBe(201);
    const lowered = await request(t.server).patch(`/api/v1/matches/${matchId}`).set('Authorization', admin()).send({ maxSlotsPerCustomer: 2 }).expect(200);
    expect(lowered.body).toMatchObject({ maxSlotsPerCustomer: 2, bookedSlots: 4 });
    expect(await slotsOf(matchId, 'keeper')).toEqual({ customerSlots: 4, countersAgree: true });
    const refusedHold = await hold(matchId, 'keeper', 1);
    expect(refusedHold.body).toMatchObject({ type: '/problems/customer-limit-reached', limit: 2, current: 4 });

    await request(t.server).patch(`/api/v1/matches/${matchId}`).set('Authorization', admin()).send({ maxSlotsPerCustomer: null }).expect(200);
    expect((await hold(matchId, 'keeper', 1)).status).toBe(201);
    await request(t.server).patch(`/api/v1/matches/${matchId}`).set('Authorization', admin()).send({ maxSlotsPerCustomer: 0 }).expect(400);
    await request(t.server).post('/api/v1/matches').set('Authorization', admin()).send({ title: 'x', startsAt: '2026-12-01T18:30:00Z', capacity: 1, maxSlotsPerCustomer: 'two' }).expect(400);
  });

  it('should answer insufficient-slots, not the limit, when the match is full for everyone', async () => {
    const matchId = await limitedMatch(2, 5);
    expect((await book(matchId, 'first', 2)).status).toBe(201);
    const full = await book(matchId, 'second', 1);
    expect(full.body).toMatchObject({ type: '/problems/insufficient-slots' });
  });
});
