import request from 'supertest';
import { startTestApp, type TestApp } from '../support/test-app';
import {
  adminAuth,
  API,
  book,
  type BookingBody,
  createMatch,
  customerAuth,
  expectProblem,
  getMatch,
  ISO_UTC,
  UNKNOWN_ID,
  UUID,
  walkPages,
} from './helpers';

describe('Bookings', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  async function bookingRows(matchId: string): Promise<number> {
    const [row] = await t.dataSource.query<Array<{ count: string }>>('SELECT count(*) FROM bookings WHERE match_id = $1', [matchId]);
    return Number(row?.count);
  }

  describe('POST /api/v1/matches/:id/bookings (book)', () => {
    it('should answer 201 with a confirmed booking for the caller', async () => {
      const match = await createMatch(t, { capacity: 10 });

      const response = await request(t.server)
        .post(`${API}/matches/${match.id}/bookings`)
        .set('Authorization', customerAuth(t, 'alice'))
        .send({ slots: 3 });

      expect(response.status).toBe(201);
      expect(response.body).toEqual({
        id: expect.stringMatching(UUID),
        matchId: match.id,
        customerId: 'alice',
        slots: 3,
        status: 'confirmed',
        createdAt: expect.stringMatching(ISO_UTC),
        cancelledAt: null,
      });
    });

    it("should count the booked slots on the match's bookedSlots and availableSlots", async () => {
      const match = await createMatch(t, { capacity: 10 });

      await book(t, 'alice', match.id, 3);
      await book(t, 'bob', match.id, 2);

      expect(await getMatch(t, match.id)).toMatchObject({ capacity: 10, bookedSlots: 5, availableSlots: 5 });
    });

    it('should accept a booking that takes exactly the last available slots', async () => {
      const match = await createMatch(t, { capacity: 5 });
      await book(t, 'alice', match.id, 2);

      const response = await request(t.server)
        .post(`${API}/matches/${match.id}/bookings`)
        .set('Authorization', customerAuth(t, 'bob'))
        .send({ slots: 3 });

      expect(response.status).toBe(201);
      expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 5, availableSlots: 0 });
    });

    it('should answer 409 insufficient-slots with availableSlots when the match is full', async () => {
      const match = await createMatch(t, { capacity: 4 });
      await book(t, 'alice', match.id, 4);

      const response = await request(t.server)
        .post(`${API}/matches/${match.id}/bookings`)
        .set('Authorization', customerAuth(t, 'bob'))
        .send({ slots: 1 });

      const problem = expectProblem(response, 409);
      expect(problem).toMatchObject({
        type: '/problems/insufficient-slots',
        matchId: match.id,
        requestedSlots: 1,
        availableSlots: 0,
      });
    });

    it('should answer 409 with the slots still available, and book nothing, when fewer slots are left than requested', async () => {
      const match = await createMatch(t, { capacity: 5 });
      await book(t, 'alice', match.id, 3);

      const response = await request(t.server)
        .post(`${API}/matches/${match.id}/bookings`)
        .set('Authorization', customerAuth(t, 'bob'))
        .send({ slots: 3 });

      expect(expectProblem(response, 409)).toMatchObject({ requestedSlots: 3, availableSlots: 2 });
      expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 3, availableSlots: 2 });
      expect(await bookingRows(match.id)).toBe(1);
    });

    it('should answer 409 with availableSlots 0 for a match of capacity 0', async () => {
      const match = await createMatch(t, { capacity: 0 });

      const response = await request(t.server)
        .post(`${API}/matches/${match.id}/bookings`)
        .set('Authorization', customerAuth(t, 'alice'))
        .send({ slots: 1 });

      expect(expectProblem(response, 409)).toMatchObject({ availableSlots: 0 });
    });

    it('should never overbook when many customers book the last slots at the same time', async () => {
      const match = await createMatch(t, { capacity: 5 });

      const responses = await Promise.all(
        Array.from({ length: 20 }, (_unused, index) =>
          request(t.server)
            .post(`${API}/matches/${match.id}/bookings`)
            .set('Authorization', customerAuth(t, `rush-${index}`))
            .send({ slots: 1 }),
        ),
      );

      const statuses = responses.map((response) => response.status).sort();
      expect(statuses).toEqual([...Array<number>(5).fill(201), ...Array<number>(15).fill(409)]);
      expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 5, availableSlots: 0 });
      expect(await bookingRows(match.id)).toBe(5);
    });

    it('should answer 404 match-not-found when no match has the id', async () => {
      const response = await request(t.server)
        .post(`${API}/matches/${UNKNOWN_ID}/bookings`)
        .set('Authorization', customerAuth(t, 'alice'))
        .send({ slots: 1 });

      expect(expectProblem(response, 404)).toMatchObject({ type: '/problems/match-not-found', matchId: UNKNOWN_ID });
    });

    it('should answer 400 naming id when the match id is not a UUID', async () => {
      const response = await request(t.server)
        .post(`${API}/matches/42/bookings`)
        .set('Authorization', customerAuth(t, 'alice'))
        .send({ slots: 1 });

      expectProblem(response, 400, 'id');
    });

    it('should accept BOOKING_MAX_SLOTS (default 10) slots in one booking', async () => {
      const match = await createMatch(t, { capacity: 100 });

      const booking = await book(t, 'alice', match.id, 10);

      expect(booking.slots).toBe(10);
    });

    it.each([0, -1, 11, 10_000])('should answer 400 naming slots, and book nothing, when slots is %p (allowed: 1 to 10)', async (slots) => {
      const match = await createMatch(t, { capacity: 100 });

      const response = await request(t.server)
        .post(`${API}/matches/${match.id}/bookings`)
        .set('Authorization', customerAuth(t, 'alice'))
        .send({ slots });

      expectProblem(response, 400, 'slots');
      expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 0 });
      expect(await bookingRows(match.id)).toBe(0);
    });
  });

  describe('GET /api/v1/bookings/:id', () => {
    it("should answer the caller's own booking", async () => {
      const match = await createMatch(t);
      const booking = await book(t, 'alice', match.id, 2);

      const response = await request(t.server).get(`${API}/bookings/${booking.id}`).set('Authorization', customerAuth(t, 'alice'));

      expect(response.status).toBe(200);
      expect(response.body).toEqual(booking);
    });

    it("should answer 404 booking-not-found (not 403) for another customer's booking", async () => {
      const match = await createMatch(t);
      const booking = await book(t, 'alice', match.id, 2);

      const response = await request(t.server).get(`${API}/bookings/${booking.id}`).set('Authorization', customerAuth(t, 'mallory'));

      expect(expectProblem(response, 404)).toMatchObject({ type: '/problems/booking-not-found', bookingId: booking.id });
    });

    it("should let an admin read anyone's booking", async () => {
      const match = await createMatch(t);
      const booking = await book(t, 'alice', match.id, 2);

      const response = await request(t.server).get(`${API}/bookings/${booking.id}`).set('Authorization', adminAuth(t));

      expect(response.status).toBe(200);
      expect(response.body).toEqual(booking);
    });

    it('should answer 404 when no booking has the id', async () => {
      const response = await request(t.server).get(`${API}/bookings/${UNKNOWN_ID}`).set('Authorization', customerAuth(t, 'alice'));

      expect(expectProblem(response, 404)).toMatchObject({ bookingId: UNKNOWN_ID });
    });

    it('should answer 400 naming id when the id is not a UUID', async () => {
      const response = await request(t.server).get(`${API}/bookings/abc`).set('Authorization', customerAuth(t, 'alice'));

      expectProblem(response, 400, 'id');
    });
  });

  describe('GET /api/v1/bookings (list)', () => {
    let matchA: string;
    let matchB: string;
    /** In creation order (oldest first). */
    let listed: BookingBody[];

    beforeAll(async () => {
      matchA = (await createMatch(t, { title: 'List A', capacity: 100 })).id;
      matchB = (await createMatch(t, { title: 'List B', capacity: 100 })).id;
      listed = [];
      for (const [customer, matchId, slots] of [
        ['lister-1', matchA, 1],
        ['lister-2', matchA, 2],
        ['lister-1', matchB, 3],
        ['lister-1', matchA, 4],
        ['lister-2', matchB, 5],
        ['lister-1', matchB, 6],
        ['lister-1', matchA, 7],
      ] as const) {
        listed.push(await book(t, customer, matchId, slots));
      }
      // Cancel one of lister-1's bookings, for the status filter.
      await request(t.server)
        .post(`${API}/bookings/${listed[3]!.id}/cancel`)
        .set('Authorization', customerAuth(t, 'lister-1'))
        .expect(200);
    });

    const ids = (bookings: BookingBody[]): string[] => bookings.map((booking) => booking.id);
    const newestFirst = (bookings: BookingBody[]): string[] => ids([...bookings].reverse());

    it("should list only the caller's own bookings, newest first", async () => {
      const response = await request(t.server).get(`${API}/bookings`).set('Authorization', customerAuth(t, 'lister-2'));

      expect(response.status).toBe(200);
      expect(ids(response.body.items)).toEqual(newestFirst(listed.filter((booking) => booking.customerId === 'lister-2')));
      expect(response.body.nextCursor).toBeNull();
    });

    it('should walk every page of the caller\'s bookings without duplicates or gaps', async () => {
      const { items, pages } = await walkPages<BookingBody>(t, `${API}/bookings`, customerAuth(t, 'lister-1'), { limit: '2' });

      expect(pages).toBe(3);
      expect(ids(items)).toEqual(newestFirst(listed.filter((booking) => booking.customerId === 'lister-1')));
    });

    it('should list nothing for a customer without bookings', async () => {
      const response = await request(t.server).get(`${API}/bookings`).set('Authorization', customerAuth(t, 'nobody'));

      expect(response.status).toBe(200);
      expect(response.body).toEqual({ items: [], nextCursor: null });
    });

    it("should let an admin list everyone's bookings, newest first, across pages", async () => {
      const inDatabase = await t.dataSource.query<Array<{ id: string }>>('SELECT id FROM bookings ORDER BY created_at DESC, id DESC');

      const { items } = await walkPages<BookingBody>(t, `${API}/bookings`, adminAuth(t), { limit: '4' });

      expect(ids(items)).toEqual(inDatabase.map((row) => row.id));
      expect(new Set(ids(items)).size).toBe(items.length);
    });

    it('should let an admin filter by matchId', async () => {
      const { items } = await walkPages<BookingBody>(t, `${API}/bookings`, adminAuth(t), { matchId: matchB, limit: '2' });

      expect(ids(items)).toEqual(newestFirst(listed.filter((booking) => booking.matchId === matchB)));
    });

    it("should apply a customer's matchId filter to their own bookings only", async () => {
      const response = await request(t.server)
        .get(`${API}/bookings`)
        .query({ matchId: matchB })
        .set('Authorization', customerAuth(t, 'lister-2'));

      expect(ids(response.body.items)).toEqual(
        newestFirst(listed.filter((booking) => booking.matchId === matchB && booking.customerId === 'lister-2')),
      );
    });

    it('should filter by status', async () => {
      const cancelled = await request(t.server)
        .get(`${API}/bookings`)
        .query({ status: 'cancelled' })
        .set('Authorization', customerAuth(t, 'lister-1'));
      const confirmed = await request(t.server)
        .get(`${API}/bookings`)
        .query({ status: 'confirmed' })
        .set('Authorization', customerAuth(t, 'lister-1'));

      expect(cancelled.body.items).toEqual([expect.objectContaining({ id: listed[3]!.id, status: 'cancelled' })]);
      expect(ids(confirmed.body.items)).toEqual(
        newestFirst(listed.filter((booking, index) => booking.customerId === 'lister-1' && index !== 3)),
      );
      expect((confirmed.body.items as BookingBody[]).every((booking) => booking.status === 'confirmed')).toBe(true);
    });

    it('should combine the matchId and status filters for an admin', async () => {
      const response = await request(t.server)
        .get(`${API}/bookings`)
        .query({ matchId: matchA, status: 'confirmed' })
        .set('Authorization', adminAuth(t));

      expect(ids(response.body.items)).toEqual(newestFirst(listed.filter((booking, index) => booking.matchId === matchA && index !== 3)));
    });

    it.each([
      ['status', { status: 'pending' }],
      ['matchId', { matchId: 'not-a-uuid' }],
      ['limit', { limit: '0' }],
      ['limit', { limit: '101' }],
      ['limit', { limit: 'many' }],
      ['cursor', { cursor: 'not-a-cursor' }],
      ['cursor', { cursor: Buffer.from(`["1","${UNKNOWN_ID}"]`).toString('base64url') }],
      ['customerId', { customerId: 'lister-2' }],
    ])('should answer 400 naming %s when the query is %j', async (field, query) => {
      const response = await request(t.server).get(`${API}/bookings`).query(query).set('Authorization', customerAuth(t, 'lister-1'));

      expectProblem(response, 400, field);
    });
  });

  describe('POST /api/v1/bookings/:id/cancel', () => {
    it('should answer 200 with the booking cancelled and give its slots back to the match', async () => {
      const match = await createMatch(t, { capacity: 10 });
      const booking = await book(t, 'alice', match.id, 4);
      await book(t, 'bob', match.id, 1);

      const response = await request(t.server).post(`${API}/bookings/${booking.id}/cancel`).set('Authorization', customerAuth(t, 'alice'));

      expect(response.status).toBe(200);
      expect(response.body).toEqual({ ...booking, status: 'cancelled', cancelledAt: expect.stringMatching(ISO_UTC) });
      expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 1, availableSlots: 9 });
    });

    it('should answer the same 200 when cancelling again, and never give the slots back twice', async () => {
      const match = await createMatch(t, { capacity: 10 });
      const booking = await book(t, 'alice', match.id, 4);
      await book(t, 'bob', match.id, 3);
      const first = await request(t.server).post(`${API}/bookings/${booking.id}/cancel`).set('Authorization', customerAuth(t, 'alice'));

      const second = await request(t.server).post(`${API}/bookings/${booking.id}/cancel`).set('Authorization', customerAuth(t, 'alice'));
      const third = await request(t.server).post(`${API}/bookings/${booking.id}/cancel`).set('Authorization', customerAuth(t, 'alice'));

      expect(first.status).toBe(200);
      expect(second.status).toBe(200);
      expect(second.body).toEqual(first.body);
      expect(third.body).toEqual(first.body);
      expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 3, availableSlots: 7 });
    });

    it('should give the slots back only once when the same booking is cancelled concurrently', async () => {
      const match = await createMatch(t, { capacity: 10 });
      const booking = await book(t, 'alice', match.id, 5);
      await book(t, 'bob', match.id, 2);

      const responses = await Promise.all(
        Array.from({ length: 8 }, () =>
          request(t.server).post(`${API}/bookings/${booking.id}/cancel`).set('Authorization', customerAuth(t, 'alice')),
        ),
      );

      expect(responses.map((response) => response.status)).toEqual(Array<number>(8).fill(200));
      expect(new Set(responses.map((response) => response.body.cancelledAt as string)).size).toBe(1);
      expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 2, availableSlots: 8 });
    });

    it('should make the given-back slots bookable again', async () => {
      const match = await createMatch(t, { capacity: 3 });
      const booking = await book(t, 'alice', match.id, 3);
      await request(t.server).post(`${API}/bookings/${booking.id}/cancel`).set('Authorization', customerAuth(t, 'alice')).expect(200);

      const rebooked = await book(t, 'bob', match.id, 3);

      expect(rebooked.status).toBe('confirmed');
      expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 3, availableSlots: 0 });
    });

    it("should answer 404 (not 403) and cancel nothing for another customer's booking", async () => {
      const match = await createMatch(t, { capacity: 10 });
      const booking = await book(t, 'alice', match.id, 4);

      const response = await request(t.server).post(`${API}/bookings/${booking.id}/cancel`).set('Authorization', customerAuth(t, 'mallory'));

      expect(expectProblem(response, 404)).toMatchObject({ type: '/problems/booking-not-found', bookingId: booking.id });
      const stored = await request(t.server).get(`${API}/bookings/${booking.id}`).set('Authorization', customerAuth(t, 'alice'));
      expect(stored.body.status).toBe('confirmed');
      expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 4 });
    });

    it("should let an admin cancel anyone's booking", async () => {
      const match = await createMatch(t, { capacity: 10 });
      const booking = await book(t, 'alice', match.id, 4);

      const response = await request(t.server).post(`${API}/bookings/${booking.id}/cancel`).set('Authorization', adminAuth(t));

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ id: booking.id, customerId: 'alice', status: 'cancelled' });
      expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 0 });
    });

    it('should answer 404 when no booking has the id', async () => {
      const response = await request(t.server).post(`${API}/bookings/${UNKNOWN_ID}/cancel`).set('Authorization', customerAuth(t, 'alice'));

      expect(expectProblem(response, 404)).toMatchObject({ bookingId: UNKNOWN_ID });
    });

    it('should answer 400 naming id when the id is not a UUID', async () => {
      const response = await request(t.server).post(`${API}/bookings/xyz/cancel`).set('Authorization', customerAuth(t, 'alice'));

      expectProblem(response, 400, 'id');
    });
  });
});
