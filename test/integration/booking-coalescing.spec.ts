import request from 'supertest';
import { Reservations } from '../../src/bookings/reservations';
import { InsufficientSlotsError, MatchNotFoundError } from '../../src/errors/domain-errors';
import { Metrics } from '../../src/observability/metrics';
import { createMatch, lockMatchRow, matchCounters } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/test-app';

interface BookingBody {
  id: string;
  customerId: string;
  slots: number;
}

/**
 * Concurrent bookings coalesce into batches that one statement decides under one lock of each
 * match row. Each request must still get its own answer, its own idempotency record and its
 * own 409, first come first served, and the invariants must hold in the database afterwards.
 */
describe('coalesced bookings', () => {
  let t: TestApp;
  beforeAll(async () => {
    // A small pool: one hot match must not be able to take all of it.
    t = await startTestApp({ DATABASE_POOL_MAX: '4', DATABASE_LOCK_TIMEOUT_MS: '5000' });
  });
  afterAll(async () => {
    await t.close();
  });

  const book = (matchId: string, customer: string, slots: number, key?: string) =>
    request(t.server)
      .post(`/api/v1/matches/${matchId}/bookings`)
      .set('Authorization', `Bearer ${t.token(customer)}`)
      .set(key ? { 'Idempotency-Key': key } : {})
      .send({ slots });

  async function batches(): Promise<{ count: number; sum: number }> {
    const { values } = await t.app.get(Metrics).bookingBatchSize.get();
    const value = (name: string) => values.find((sample) => sample.metricName === name)?.value ?? 0;
    return { count: value('booking_batch_size_count'), sum: value('booking_batch_size_sum') };
  }

  it('should decide 300 concurrent bookings of 1 to 3 slots in batches, each with its own answer, never overbooking', async () => {
    const capacity = 200;
    const matchId = await createMatch(t, capacity);
    const before = await batches();

    const responses = await Promise.all(Array.from({ length: 300 }, (_, i) => book(matchId, `fan-${i}`, 1 + (i % 3))));

    const after = await batches();
    expect(after.sum - before.sum).toBe(300);
    // Fewer transactions than requests: they were coalesced.
    expect(after.count - before.count).toBeLessThan(300);

    const confirmed = responses.filter((r) => r.status === 201).map((r) => r.body as BookingBody);
    const refused = responses.filter((r) => r.status === 409);
    expect(confirmed.length + refused.length).toBe(300);
    responses.forEach((response, i) => {
      if (response.status === 201) expect(response.body).toMatchObject({ customerId: `fan-${i}`, slots: 1 + (i % 3), matchId, status: 'confirmed' });
      // Refused only when its slots did not fit at its turn.
      else expect((response.body as { availableSlots: number }).availableSlots).toBeLessThan(1 + (i % 3));
    });
    expect(new Set(confirmed.map((b) => b.id)).size).toBe(confirmed.length);

    const counters = await matchCounters(t, matchId);
    expect(counters.bookedSlots).toBe(counters.confirmedSlots);
    expect(counters.confirmedBookings).toBe(confirmed.length);
    expect(counters.bookedSlots).toBe(confirmed.reduce((sum, b) => sum + b.slots, 0));
    // 300 requests of 2 slots on average ask for far more than 200: the match is left with less than 3 free.
    expect(capacity - counters.bookedSlots).toBeLessThan(3);
    const rows = await t.dataSource.query<Array<{ id: string; customer_id: string; slots: number }>>(
      `SELECT id, customer_id, slots FROM bookings WHERE match_id = $1 AND status = 'confirmed'`,
      [matchId],
    );
    expect(new Map(rows.map((row) => [row.id, [row.customer_id, row.slots]]))).toEqual(
      new Map(confirmed.map((b) => [b.id, [b.customerId, b.slots]])),
    );
  });

  it('should write the idempotency record of every confirmed request of a batch, none for a refused one, and replay each exactly', async () => {
    const matchId = await createMatch(t, 30);
    const holder = await lockMatchRow(t.databaseUrl, matchId);
    const pending = Array.from({ length: 50 }, (_, i) => book(matchId, `keyed-${i}`, 1, `key-${i}`).then((r) => r));
    // Let all 50 queue up behind the locked row, so that most of them share one batch.
    await new Promise((resolve) => setTimeout(resolve, 300));
    await holder.query('ROLLBACK');
    await holder.end();
    const responses = await Promise.all(pending);

    expect(responses.filter((r) => r.status === 201)).toHaveLength(30);
    expect(responses.filter((r) => r.status === 409)).toHaveLength(20);
    const records = await t.dataSource.query<Array<{ customer_id: string; key: string; response_body: BookingBody }>>(
      `SELECT customer_id, key, response_body FROM idempotency_keys WHERE customer_id LIKE 'keyed-%'`,
    );
    expect(records).toHaveLength(30);

    await Promise.all(
      responses.map(async (first, i) => {
        const again = await book(matchId, `keyed-${i}`, 1, `key-${i}`);
        if (first.status === 201) {
          expect(again.status).toBe(201);
          expect(again.headers['idempotent-replayed']).toBe('true');
          expect(again.body).toEqual(first.body);
          expect(records.find((record) => record.key === `key-${i}`)?.response_body).toEqual(first.body);
        } else {
          // A 409 is not stored: the retry runs again and the match is full.
          expect(again.status).toBe(409);
          expect(again.headers['idempotent-replayed']).toBeUndefined();
        }
      }),
    );
    expect((await matchCounters(t, matchId)).bookedSlots).toBe(30);
  });

  it('should decide a batch first come, first served: a later smaller request may take what an earlier larger one could not', async () => {
    const matchId = await createMatch(t, 4);
    const requests = [3, 2, 1, 1].map((slots, i) => ({ matchId, customerId: `fcfs-${i}`, slots }));

    const outcomes = await t.app.get(Reservations).reserve(requests);

    expect(outcomes.map((o) => o.ok)).toEqual([true, false, true, false]);
    expect(outcomes[1]).toMatchObject({ ok: false, error: expect.any(InsufficientSlotsError) });
    expect((outcomes[1] as { error: InsufficientSlotsError }).error.availableSlots).toBe(1);
    expect((outcomes[3] as { error: InsufficientSlotsError }).error.availableSlots).toBe(0);
    expect(await matchCounters(t, matchId)).toEqual({ capacity: 4, bookedSlots: 4, confirmedSlots: 4, confirmedBookings: 2 });
  });

  it('should release expired holds once when a batch runs short, and decide the refused requests again', async () => {
    const matchId = await createMatch(t, 3);
    await request(t.server)
      .post(`/api/v1/matches/${matchId}/holds`)
      .set('Authorization', `Bearer ${t.token('holder')}`)
      .send({ slots: 3 })
      .expect(201);
    await t.dataSource.query(`UPDATE holds SET expires_at = now() - interval '1 second' WHERE match_id = $1`, [matchId]);

    const outcomes = await t.app.get(Reservations).reserve([1, 1, 1, 1].map((slots, i) => ({ matchId, customerId: `after-hold-${i}`, slots })));

    expect(outcomes.map((o) => o.ok)).toEqual([true, true, true, false]);
    const [match] = await t.dataSource.query<Array<{ booked_slots: number; held_slots: number }>>(
      'SELECT booked_slots, held_slots FROM matches WHERE id = $1',
      [matchId],
    );
    expect(match).toEqual({ booked_slots: 3, held_slots: 0 });
  });

  it('should decide a batch of several matches, each first come first served, with its own 404 for an unknown match', async () => {
    const small = await createMatch(t, 1, 'small');
    const large = await createMatch(t, 10, 'large');
    const unknown = '00000000-0000-4000-8000-000000000000';
    const requests = [
      { matchId: large, customerId: 'multi-0', slots: 4 },
      { matchId: small, customerId: 'multi-1', slots: 1 },
      { matchId: unknown, customerId: 'multi-2', slots: 1 },
      { matchId: small, customerId: 'multi-3', slots: 1 },
      { matchId: large, customerId: 'multi-4', slots: 6 },
      { matchId: large, customerId: 'multi-5', slots: 1 },
    ];

    const outcomes = await t.app.get(Reservations).reserve(requests);

    expect(outcomes.map((o) => o.ok)).toEqual([true, true, false, false, true, false]);
    expect(outcomes[2]).toEqual({ ok: false, error: expect.any(MatchNotFoundError) });
    expect(outcomes[3]).toEqual({ ok: false, error: expect.any(InsufficientSlotsError) });
    expect((outcomes[5] as { error: InsufficientSlotsError }).error.availableSlots).toBe(0);
    outcomes.forEach((outcome, i) => {
      if (outcome.ok) expect(outcome.value).toMatchObject({ matchId: requests[i]!.matchId, customerId: `multi-${i}`, slots: requests[i]!.slots });
    });
    expect(await matchCounters(t, small)).toEqual({ capacity: 1, bookedSlots: 1, confirmedSlots: 1, confirmedBookings: 1 });
    expect(await matchCounters(t, large)).toEqual({ capacity: 10, bookedSlots: 10, confirmedSlots: 10, confirmedBookings: 2 });
  });

  it('should never overbook any of 20 matches while 600 bookings spread over them race in mixed batches', async () => {
    const matchIds = await Promise.all(Array.from({ length: 20 }, (_, i) => createMatch(t, 10, `spread-${i}`)));
    const responses = await Promise.all(Array.from({ length: 600 }, (_, i) => book(matchIds[i % 20]!, `spread-${i}`, 1 + (i % 2))));
    expect(responses.every((r) => r.status === 201 || r.status === 409)).toBe(true);
    for (const matchId of matchIds) {
      const counters = await matchCounters(t, matchId);
      expect(counters.bookedSlots).toBe(counters.confirmedSlots);
      expect(counters.bookedSlots).toBeGreaterThanOrEqual(9); // 1- and 2-slot requests leave at most 1 slot free
      expect(counters.bookedSlots).toBeLessThanOrEqual(10);
    }
    const confirmedSlots = responses.filter((r) => r.status === 201).reduce((sum, r) => sum + (r.body as BookingBody).slots, 0);
    const [{ booked }] = await t.dataSource.query<[{ booked: number }]>('SELECT SUM(booked_slots)::int AS booked FROM matches WHERE id = ANY($1::uuid[])', [matchIds]);
    expect(booked).toBe(confirmedSlots);
  });

  it('should keep serving other matches from a pool of 4 while 60 bookings wait for one locked hot match', async () => {
    const hot = await createMatch(t, 1000, 'hot');
    const others = await Promise.all(Array.from({ length: 8 }, (_, i) => createMatch(t, 10, `other-${i}`)));
    const holder = await lockMatchRow(t.databaseUrl, hot);
    try {
      const hotRequests = Array.from({ length: 60 }, (_, i) => book(hot, `hot-${i}`, 1).then((r) => r));
      await new Promise((resolve) => setTimeout(resolve, 200));

      // Without coalescing, the 60 waiting bookings would hold every pooled connection.
      const otherResponses = await Promise.all(others.map((matchId, i) => book(matchId, `spread-${i}`, 1)));
      expect(otherResponses.map((r) => r.status)).toEqual(others.map(() => 201));

      await holder.query('ROLLBACK');
      const hotResponses = await Promise.all(hotRequests);
      expect(hotResponses.map((r) => r.status)).toEqual(hotResponses.map(() => 201));
    } finally {
      await holder.end();
    }
    expect(await matchCounters(t, hot)).toMatchObject({ bookedSlots: 60, confirmedSlots: 60 });
  });
});
