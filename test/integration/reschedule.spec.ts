import request from 'supertest';
import { Metrics } from '../../src/observability/metrics';
import { createMatch, matchCounters } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/test-app';

/** Moving a booking between matches: atomic, lock-ordered, and never a deadlock error for a client. */
describe('rescheduling a booking', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  const book = async (matchId: string, customer: string, slots: number): Promise<{ id: string; slots: number }> =>
    (
      await request(t.server)
        .post(`/api/v1/matches/${matchId}/bookings`)
        .set('Authorization', `Bearer ${t.token(customer)}`)
        .send({ slots })
        .expect(201)
    ).body as { id: string; slots: number };
  const reschedule = (bookingId: string, customer: string, toMatchId: unknown) =>
    request(t.server)
      .post(`/api/v1/bookings/${bookingId}/reschedule`)
      .set('Authorization', `Bearer ${t.token(customer)}`)
      .send({ toMatchId });

  it('should move the booking and its slots from one match to the other', async () => {
    const [from, to] = [await createMatch(t, 5), await createMatch(t, 5)];
    const booking = await book(from, 'alice', 3);

    const response = await reschedule(booking.id, 'alice', to).expect(200);

    expect(response.body).toMatchObject({ id: booking.id, matchId: to, slots: 3, status: 'confirmed' });
    expect(await matchCounters(t, from)).toMatchObject({ bookedSlots: 0, confirmedSlots: 0 });
    expect(await matchCounters(t, to)).toMatchObject({ bookedSlots: 3, confirmedSlots: 3 });
  });

  it('should answer 409 with availableSlots and move nothing when the target has too few slots', async () => {
    const [from, to] = [await createMatch(t, 5), await createMatch(t, 2)];
    const booking = await book(from, 'alice', 3);

    const response = await reschedule(booking.id, 'alice', to).expect(409);

    expect(response.body).toMatchObject({ type: '/problems/insufficient-slots', matchId: to, availableSlots: 2, requestedSlots: 3 });
    expect(await matchCounters(t, from)).toMatchObject({ bookedSlots: 3, confirmedSlots: 3 });
    expect(await matchCounters(t, to)).toMatchObject({ bookedSlots: 0, confirmedSlots: 0 });
  });

  it('should refuse to reschedule a cancelled booking with 409', async () => {
    const [from, to] = [await createMatch(t, 5), await createMatch(t, 5)];
    const booking = await book(from, 'alice', 1);
    await request(t.server).post(`/api/v1/bookings/${booking.id}/cancel`).set('Authorization', `Bearer ${t.token('alice')}`).expect(200);

    const response = await reschedule(booking.id, 'alice', to).expect(409);

    expect(response.body).toMatchObject({ type: '/problems/booking-not-confirmed', bookingId: booking.id });
    expect(await matchCounters(t, to)).toMatchObject({ bookedSlots: 0 });
  });

  it('should answer 404 for an unknown target match or someone else’s booking, and 400 for a bad toMatchId', async () => {
    const from = await createMatch(t, 5);
    const booking = await book(from, 'alice', 1);

    await reschedule(booking.id, 'alice', '00000000-0000-4000-8000-000000000000')
      .expect(404)
      .expect((response) => expect(response.body).toMatchObject({ type: '/problems/match-not-found' }));
    await reschedule(booking.id, 'mallory', from).expect(404);
    const bad = await reschedule(booking.id, 'alice', 'not-a-uuid').expect(400);
    expect(bad.body.errors).toEqual([expect.objectContaining({ field: 'toMatchId' })]);
  });

  it('should answer the booking unchanged when rescheduled to its own match', async () => {
    const from = await createMatch(t, 5);
    const booking = await book(from, 'alice', 2);
    await reschedule(booking.id, 'alice', from).expect(200);
    expect(await matchCounters(t, from)).toMatchObject({ bookedSlots: 2, confirmedSlots: 2 });
  });

  it('should let many clients reschedule in opposite directions at once with no deadlock reaching anyone', async () => {
    const [a, b] = [await createMatch(t, 60), await createMatch(t, 60)];
    const onA = await Promise.all(Array.from({ length: 20 }, (_, i) => book(a, `a-${i}`, 1 + (i % 2))));
    const onB = await Promise.all(Array.from({ length: 20 }, (_, i) => book(b, `b-${i}`, 1 + (i % 2))));

    // Each booking is moved back and forth three times, all at once, with cancellations mixed in.
    const moves = [...onA.map((booking, i) => ({ booking, customer: `a-${i}`, path: [b, a, b] })), ...onB.map((booking, i) => ({ booking, customer: `b-${i}`, path: [a, b, a] }))];
    const responses = (
      await Promise.all(
        moves.map(async ({ booking, customer, path }, i) => {
          const answers = [];
          for (const target of path) answers.push(await reschedule(booking.id, customer, target));
          if (i % 5 === 0) answers.push(await request(t.server).post(`/api/v1/bookings/${booking.id}/cancel`).set('Authorization', `Bearer ${t.token(customer)}`));
          return answers;
        }),
      )
    ).flat();

    for (const response of responses) expect(response.status).toBe(200);
    // Locking in id order means no deadlock even happened, not merely that retries hid them.
    const retries = await t.app.get(Metrics).transactionRetries.get();
    expect(retries.values.filter((sample) => sample.labels.transaction === 'reschedule-booking')).toEqual([]);
    for (const matchId of [a, b]) {
      const counters = await matchCounters(t, matchId);
      expect(counters.bookedSlots).toBe(counters.confirmedSlots);
      expect(counters.bookedSlots).toBeLessThanOrEqual(counters.capacity);
    }
    const [{ total }] = await t.dataSource.query<[{ total: string }]>(
      `SELECT COALESCE(SUM(slots), 0) AS total FROM bookings WHERE status = 'confirmed' AND match_id = ANY($1::uuid[])`,
      [[a, b]],
    );
    const expectedSlots = moves.filter((_, i) => i % 5 !== 0).reduce((sum, move) => sum + move.booking.slots, 0);
    expect(Number(total)).toBe(expectedSlots);
  });
});
