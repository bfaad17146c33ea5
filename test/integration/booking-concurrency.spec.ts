import request from 'supertest';
import { createMatch, matchCounters } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * Races many clients against one match over real HTTP and a real PostgreSQL, then checks the
 * invariants in the database: never more booked than capacity, and the match counter always
 * equal to the sum of its confirmed bookings.
 */
describe('booking under concurrency', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  const book = (matchId: string, customer: string, slots: number) =>
    request(t.server)
      .post(`/api/v1/matches/${matchId}/bookings`)
      .set('Authorization', `Bearer ${t.token(customer)}`)
      .send({ slots });

  const cancel = (bookingId: string, customer: string) =>
    request(t.server).post(`/api/v1/bookings/${bookingId}/cancel`).set('Authorization', `Bearer ${t.token(customer)}`);

  it('should confirm exactly 50 of 200 concurrent 1-slot bookings on a match of capacity 50 and answer 409 to the rest', async () => {
    const matchId = await createMatch(t, 50);

    const responses = await Promise.all(Array.from({ length: 200 }, (_, i) => book(matchId, `customer-${i}`, 1)));

    const statuses = responses.map((response) => response.status);
    expect(statuses.filter((status) => status === 201)).toHaveLength(50);
    expect(statuses.filter((status) => status === 409)).toHaveLength(150);
    for (const rejected of responses.filter((response) => response.status === 409)) {
      expect(rejected.body).toMatchObject({ type: '/problems/insufficient-slots', availableSlots: 0 });
    }
    const counters = await matchCounters(t, matchId);
    expect(counters).toEqual({ capacity: 50, bookedSlots: 50, confirmedSlots: 50, confirmedBookings: 50 });
    // every 201 has its row
    const confirmedIds = responses.filter((r) => r.status === 201).map((r) => (r.body as { id: string }).id);
    const [{ count }] = await t.dataSource.query<[{ count: string }]>(
      `SELECT count(*) FROM bookings WHERE id = ANY($1::uuid[]) AND status = 'confirmed'`,
      [confirmedIds],
    );
    expect(Number(count)).toBe(50);
  });

  it('should keep the counter equal to the sum of confirmed bookings through a storm of bookings and cancellations', async () => {
    const capacity = 40;
    const matchId = await createMatch(t, capacity);
    const seeded = await Promise.all(Array.from({ length: 20 }, (_, i) => book(matchId, `seed-${i % 5}`, 1 + (i % 2))));
    const seededBookings = seeded.filter((r) => r.status === 201).map((r) => r.body as { id: string; customerId: string; slots: number });
    expect(seededBookings).toHaveLength(20);

    // New bookings race cancellations, and every seeded booking is cancelled twice at once.
    const bookings = Array.from({ length: 120 }, (_, i) => book(matchId, `storm-${i % 7}`, 1 + (i % 3)));
    const cancellations = seededBookings.flatMap((booking) => [
      cancel(booking.id, booking.customerId),
      cancel(booking.id, booking.customerId),
    ]);
    const [bookingResponses, cancelResponses] = await Promise.all([Promise.all(bookings), Promise.all(cancellations)]);

    for (const response of bookingResponses) expect([201, 409]).toContain(response.status);
    for (const response of cancelResponses) {
      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'cancelled' });
    }
    const counters = await matchCounters(t, matchId);
    expect(counters.bookedSlots).toBe(counters.confirmedSlots);
    expect(counters.bookedSlots).toBeLessThanOrEqual(capacity);
    const bookedInStorm = bookingResponses
      .filter((r) => r.status === 201)
      .reduce((sum, r) => sum + (r.body as { slots: number }).slots, 0);
    // every seeded booking was cancelled exactly once, so only the storm's bookings remain
    expect(counters.confirmedSlots).toBe(bookedInStorm);
  });

  it('should never let a capacity decrease racing with bookings end below what is booked', async () => {
    const matchId = await createMatch(t, 100);
    const admin = t.token('admin', { admin: true });
    const capacities = Array.from({ length: 30 }, (_, i) => (i * 37) % 101);

    const [bookingResponses, patchResponses] = await Promise.all([
      Promise.all(Array.from({ length: 120 }, (_, i) => book(matchId, `racer-${i}`, 1))),
      Promise.all(
        capacities.map((capacity) =>
          request(t.server).patch(`/api/v1/matches/${matchId}`).set('Authorization', `Bearer ${admin}`).send({ capacity }),
        ),
      ),
    ]);

    for (const response of bookingResponses) expect([201, 409]).toContain(response.status);
    for (const response of patchResponses) {
      expect([200, 409]).toContain(response.status);
      if (response.status === 409) {
        expect(response.body).toMatchObject({ type: '/problems/capacity-below-booked' });
        expect((response.body as { bookedSlots: number }).bookedSlots).toBeGreaterThan((response.body as { requestedCapacity: number }).requestedCapacity);
      }
    }
    const counters = await matchCounters(t, matchId);
    expect(counters.bookedSlots).toBe(counters.confirmedSlots);
    expect(counters.bookedSlots).toBeLessThanOrEqual(counters.capacity);
    expect(counters.confirmedBookings).toBe(bookingResponses.filter((r) => r.status === 201).length);
  });
});
