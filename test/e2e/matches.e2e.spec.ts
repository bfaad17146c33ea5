import request from 'supertest';
import { startTestApp, type TestApp } from '../support/test-app';
import {
  adminAuth,
  API,
  book,
  createMatch,
  customerAuth,
  expectProblem,
  getMatch,
  ISO_UTC,
  type MatchBody,
  type PageBody,
  UNKNOWN_ID,
  UUID,
  walkPages,
} from './helpers';

describe('Matches', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  describe('POST /api/v1/matches (create)', () => {
    it('should answer 201 with the new match and its availability when an admin creates it', async () => {
      const response = await request(t.server)
        .post(`${API}/matches`)
        .set('Authorization', adminAuth(t))
        .send({ title: 'Final: Lions vs Tigers', startsAt: '2026-12-01T18:30:00Z', capacity: 100 });

      expect(response.status).toBe(201);
      expect(response.headers['content-type']).toMatch(/^application\/json/);
      expect(response.body).toEqual({
        id: expect.stringMatching(UUID),
        title: 'Final: Lions vs Tigers',
        startsAt: '2026-12-01T18:30:00.000Z',
        capacity: 100,
        maxSlotsPerCustomer: null,
        bookedSlots: 0,
        heldSlots: 0,
        waitingEntries: 0,
        availableSlots: 100,
        createdAt: expect.stringMatching(ISO_UTC),
        updatedAt: expect.stringMatching(ISO_UTC),
      });
    });

    it('should store the match so that GET /matches/:id answers the same representation', async () => {
      const created = await createMatch(t, { title: 'Stored', capacity: 7 });

      const response = await request(t.server).get(`${API}/matches/${created.id}`).set('Authorization', adminAuth(t));

      expect(response.status).toBe(200);
      expect(response.body).toEqual(created);
    });

    it('should answer startsAt in UTC when it was sent with another offset', async () => {
      const created = await createMatch(t, { startsAt: '2026-12-01T18:30:00+02:00' });

      expect(created.startsAt).toBe('2026-12-01T16:30:00.000Z');
    });

    it('should accept a capacity of 0 (a match nobody can book yet)', async () => {
      const created = await createMatch(t, { capacity: 0 });

      expect(created).toMatchObject({ capacity: 0, bookedSlots: 0, availableSlots: 0 });
    });

    it('should answer 403 problem+json and create nothing when the caller is not an admin', async () => {
      const [before] = await t.dataSource.query<Array<{ count: string }>>('SELECT count(*) FROM matches');

      const response = await request(t.server)
        .post(`${API}/matches`)
        .set('Authorization', customerAuth(t, 'alice'))
        .send({ title: 'Sneaky', startsAt: '2026-12-01T18:30:00Z', capacity: 10 });

      expectProblem(response, 403);
      const [after] = await t.dataSource.query<Array<{ count: string }>>('SELECT count(*) FROM matches');
      expect(after).toEqual(before);
    });
  });

  describe('GET /api/v1/matches/:id', () => {
    it('should let a customer (non-admin) read a match', async () => {
      const created = await createMatch(t);

      const response = await request(t.server).get(`${API}/matches/${created.id}`).set('Authorization', customerAuth(t, 'bob'));

      expect(response.status).toBe(200);
      expect(response.body).toEqual(created);
    });

    it('should tag the answer with a weak ETag and answer 304 without a body while the match is unchanged', async () => {
      const created = await createMatch(t);
      const read = () => request(t.server).get(`${API}/matches/${created.id}`).set('Authorization', customerAuth(t, 'bob'));
      const first = await read().expect(200);
      const etag = first.headers.etag;
      expect(etag).toMatch(/^W\/"[0-9a-f]+-[A-Za-z0-9+/_-]+"$/);

      const unchanged = await read().set('If-None-Match', etag!).expect(304);
      expect(unchanged.text).toBe('');

      await book(t, 'carol', created.id, 1);
      const changed = await read().set('If-None-Match', etag!).expect(200);
      expect(changed.headers.etag).not.toBe(etag);
      expect((changed.body as MatchBody).bookedSlots).toBe(1);
    });

    it('should tag no write answer with an ETag (only reads can be revalidated)', async () => {
      const created = await createMatch(t);
      const booked = await request(t.server)
        .post(`${API}/matches/${created.id}/bookings`)
        .set('Authorization', customerAuth(t, 'dave'))
        .send({ slots: 1 })
        .expect(201);

      expect(booked.headers.etag).toBeUndefined();
    });

    it('should answer 404 match-not-found problem naming the id when no match has it', async () => {
      const response = await request(t.server).get(`${API}/matches/${UNKNOWN_ID}`).set('Authorization', adminAuth(t));

      const problem = expectProblem(response, 404);
      expect(problem).toMatchObject({ type: '/problems/match-not-found', matchId: UNKNOWN_ID });
    });

    it('should answer 400 naming id when the id is not a UUID', async () => {
      const response = await request(t.server).get(`${API}/matches/not-a-uuid`).set('Authorization', adminAuth(t));

      expectProblem(response, 400, 'id');
    });
  });

  describe('GET /api/v1/matches (list)', () => {
    const WINDOW_FROM = '2031-03-01T00:00:00Z';
    const WINDOW_TO = '2031-04-01T00:00:00Z';
    /** Matches in a month of their own, with ties on startsAt so that ordering by id matters. */
    let windowMatches: MatchBody[];

    beforeAll(async () => {
      const startTimes = [
        '2031-03-20T18:00:00Z',
        '2031-03-05T18:00:00Z',
        '2031-03-10T18:00:00Z',
        '2031-03-10T18:00:00Z',
        '2031-03-10T18:00:00Z',
        '2031-03-01T00:00:00Z', // exactly at `from`: included
        '2031-03-31T23:59:59.999Z',
        '2031-03-15T12:00:00.123456Z',
        '2031-03-15T12:00:00.123457Z',
        '2031-03-02T09:00:00+09:00', // 2031-03-02T00:00Z
        '2031-03-10T18:00:00Z',
        '2031-03-25T18:00:00Z',
      ];
      windowMatches = [];
      for (const [index, startsAt] of startTimes.entries()) {
        windowMatches.push(await createMatch(t, { title: `Window ${index}`, startsAt }));
      }
      // Just outside the window on both sides: never listed by the window filter.
      await createMatch(t, { title: 'Before window', startsAt: '2031-02-28T23:59:59.999Z' });
      await createMatch(t, { title: 'At window end', startsAt: WINDOW_TO });
    });

    function sortedByStartThenId(matches: MatchBody[]): string[] {
      return [...matches]
        .sort((a, b) => Date.parse(a.startsAt) - Date.parse(b.startsAt) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
        .map((match) => match.id);
    }

    it('should walk every page of the whole list without duplicates or gaps, ordered by startsAt then id', async () => {
      const inDatabase = await t.dataSource.query<Array<{ id: string }>>('SELECT id FROM matches ORDER BY starts_at, id');

      const { items, pages } = await walkPages<MatchBody>(t, `${API}/matches`, adminAuth(t), { limit: '3' });

      expect(pages).toBe(Math.ceil(inDatabase.length / 3));
      expect(items.map((match) => match.id)).toEqual(inDatabase.map((row) => row.id));
      expect(new Set(items.map((match) => match.id)).size).toBe(items.length);
    });

    it('should list only matches with from <= startsAt < to, in order, across pages', async () => {
      const { items } = await walkPages<MatchBody>(t, `${API}/matches`, adminAuth(t), {
        from: WINDOW_FROM,
        to: WINDOW_TO,
        limit: '2',
      });

      expect(items.map((match) => match.id)).toEqual(sortedByStartThenId(windowMatches));
      expect(items.map((match) => match.title)).not.toContain('Before window');
      expect(items.map((match) => match.title)).not.toContain('At window end');
    });

    it('should give each page exactly `limit` items and a nextCursor until the last page, which has nextCursor null', async () => {
      const query = { from: WINDOW_FROM, to: WINDOW_TO, limit: '5' };

      const first = await request(t.server).get(`${API}/matches`).query(query).set('Authorization', adminAuth(t)).expect(200);
      const second = await request(t.server)
        .get(`${API}/matches`)
        .query({ ...query, cursor: first.body.nextCursor })
        .set('Authorization', adminAuth(t))
        .expect(200);
      const third = await request(t.server)
        .get(`${API}/matches`)
        .query({ ...query, cursor: second.body.nextCursor })
        .set('Authorization', adminAuth(t))
        .expect(200);

      expect([first.body.items.length, second.body.items.length, third.body.items.length]).toEqual([5, 5, 2]);
      expect(first.body.nextCursor).toEqual(expect.any(String));
      expect(second.body.nextCursor).toEqual(expect.any(String));
      expect(third.body.nextCursor).toBeNull();
    });

    it('should answer nextCursor null when the last page is exactly full', async () => {
      const response = await request(t.server)
        .get(`${API}/matches`)
        .query({ from: WINDOW_FROM, to: WINDOW_TO, limit: String(windowMatches.length) })
        .set('Authorization', adminAuth(t))
        .expect(200);

      expect(response.body.items).toHaveLength(windowMatches.length);
      expect(response.body.nextCursor).toBeNull();
    });

    it('should list from `from` onwards when only from is given', async () => {
      const { items } = await walkPages<MatchBody>(t, `${API}/matches`, adminAuth(t), { from: '2031-03-25T18:00:00Z' });

      const titles = items.map((match) => match.title);
      expect(titles).toEqual(expect.arrayContaining(['Window 11', 'Window 6', 'At window end']));
      expect(items.every((match) => Date.parse(match.startsAt) >= Date.parse('2031-03-25T18:00:00Z'))).toBe(true);
    });

    it('should list before `to` only when only to is given', async () => {
      const { items } = await walkPages<MatchBody>(t, `${API}/matches`, adminAuth(t), { to: '2031-03-02T00:00:00Z' });

      expect(items.map((match) => match.title)).toEqual(expect.arrayContaining(['Window 5', 'Before window']));
      expect(items.map((match) => match.title)).not.toContain('Window 9');
      expect(items.every((match) => Date.parse(match.startsAt) < Date.parse('2031-03-02T00:00:00Z'))).toBe(true);
    });

    it('should return 20 items per page by default', async () => {
      for (let index = 0; index < 21; index += 1) {
        await createMatch(t, { title: `Default page ${index}`, startsAt: `2032-01-01T10:${String(index).padStart(2, '0')}:00Z` });
      }

      const response = await request(t.server)
        .get(`${API}/matches`)
        .query({ from: '2032-01-01T00:00:00Z', to: '2032-01-02T00:00:00Z' })
        .set('Authorization', adminAuth(t))
        .expect(200);

      expect(response.body.items).toHaveLength(20);
      expect(response.body.nextCursor).toEqual(expect.any(String));
    });

    it('should accept limit=1 and limit=100', async () => {
      const [{ count }] = (await t.dataSource.query<Array<{ count: string }>>('SELECT count(*) FROM matches')) as [{ count: string }];

      const one = await request(t.server).get(`${API}/matches`).query({ limit: '1' }).set('Authorization', adminAuth(t));
      const hundred = await request(t.server).get(`${API}/matches`).query({ limit: '100' }).set('Authorization', adminAuth(t));

      expect(one.status).toBe(200);
      expect(one.body.items).toHaveLength(1);
      expect(hundred.status).toBe(200);
      expect((hundred.body as PageBody<MatchBody>).items).toHaveLength(Math.min(100, Number(count)));
    });

    it('should let a customer (non-admin) list matches', async () => {
      const response = await request(t.server)
        .get(`${API}/matches`)
        .query({ from: WINDOW_FROM, to: WINDOW_TO, limit: '100' })
        .set('Authorization', customerAuth(t, 'carol'));

      expect(response.status).toBe(200);
      expect(response.body.items).toHaveLength(windowMatches.length);
    });

    it.each([
      ['is equal to from', '2031-03-10T00:00:00Z', '2031-03-10T00:00:00Z'],
      ['is before from', '2031-03-10T00:00:00Z', '2031-03-09T00:00:00Z'],
      ['is the same instant written with another offset', '2031-03-10T00:00:00Z', '2031-03-10T02:00:00+02:00'],
    ])('should answer 400 naming "to" when to %s', async (_case, from, to) => {
      const response = await request(t.server).get(`${API}/matches`).query({ from, to }).set('Authorization', adminAuth(t));

      expectProblem(response, 400, 'to');
    });

    it.each([
      ['not base64 JSON at all', 'garbage!'],
      ['base64 of something that is not JSON', Buffer.from('hello').toString('base64url')],
      ['a JSON object instead of the position pair', Buffer.from('{"at":"x"}').toString('base64url')],
      ['a position whose id is not a UUID', Buffer.from('["2031-03-10T18:00:00.000000Z","42"]').toString('base64url')],
      ['a position whose time is not a time', Buffer.from(`["yesterday","${UNKNOWN_ID}"]`).toString('base64url')],
      ['a position whose time is a bare number', Buffer.from(`["1","${UNKNOWN_ID}"]`).toString('base64url')],
      ['a position on an impossible date', Buffer.from(`["2031-02-30T10:00:00.000000Z","${UNKNOWN_ID}"]`).toString('base64url')],
      ['far too long', 'a'.repeat(501)],
    ])('should answer 400 naming cursor when the cursor is %s', async (_case, cursor) => {
      const response = await request(t.server).get(`${API}/matches`).query({ cursor }).set('Authorization', adminAuth(t));

      expectProblem(response, 400, 'cursor');
    });

    it.each([
      ['0', 'limit'],
      ['101', 'limit'],
      ['-1', 'limit'],
      ['1.5', 'limit'],
      ['1e1', 'limit'],
      ['ten', 'limit'],
    ])('should answer 400 naming limit when limit=%s', async (limit, field) => {
      const response = await request(t.server).get(`${API}/matches`).query({ limit }).set('Authorization', adminAuth(t));

      expectProblem(response, 400, field);
    });

    it.each([
      ['from', '2031-02-30T00:00:00Z'],
      ['from', '2031-03-01T00:00:00'],
      ['to', 'next week'],
      ['to', '2031-03-01'],
    ])('should answer 400 naming %s when it is %s', async (field, value) => {
      const response = await request(t.server)
        .get(`${API}/matches`)
        .query({ [field]: value })
        .set('Authorization', adminAuth(t));

      expectProblem(response, 400, field);
    });

    it('should answer 400 naming an unknown query parameter', async () => {
      const response = await request(t.server).get(`${API}/matches`).query({ sort: 'title' }).set('Authorization', adminAuth(t));

      expectProblem(response, 400, 'sort');
    });
  });

  describe('PATCH /api/v1/matches/:id (update)', () => {
    it('should change the title and keep everything else', async () => {
      const created = await createMatch(t, { title: 'Old title', capacity: 5 });

      const response = await request(t.server)
        .patch(`${API}/matches/${created.id}`)
        .set('Authorization', adminAuth(t))
        .send({ title: 'New title' });

      expect(response.status).toBe(200);
      expect(response.body).toEqual({ ...created, title: 'New title', updatedAt: expect.stringMatching(ISO_UTC) });
      expect(Date.parse(response.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.updatedAt));
      expect(await getMatch(t, created.id)).toEqual(response.body);
    });

    it('should change startsAt and answer it in UTC', async () => {
      const created = await createMatch(t, { startsAt: '2026-12-01T18:30:00Z' });

      const response = await request(t.server)
        .patch(`${API}/matches/${created.id}`)
        .set('Authorization', adminAuth(t))
        .send({ startsAt: '2027-01-15T20:00:00-05:00' });

      expect(response.status).toBe(200);
      expect(response.body.startsAt).toBe('2027-01-16T01:00:00.000Z');
      expect((await getMatch(t, created.id)).startsAt).toBe('2027-01-16T01:00:00.000Z');
    });

    it('should raise the capacity and recompute availableSlots', async () => {
      const created = await createMatch(t, { capacity: 4 });
      await book(t, 'dave', created.id, 3);

      const response = await request(t.server)
        .patch(`${API}/matches/${created.id}`)
        .set('Authorization', adminAuth(t))
        .send({ capacity: 10 });

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ capacity: 10, bookedSlots: 3, availableSlots: 7 });
    });

    it('should change title, startsAt and capacity together', async () => {
      const created = await createMatch(t);

      const response = await request(t.server)
        .patch(`${API}/matches/${created.id}`)
        .set('Authorization', adminAuth(t))
        .send({ title: 'All three', startsAt: '2028-06-01T12:00:00Z', capacity: 42 });

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ title: 'All three', startsAt: '2028-06-01T12:00:00.000Z', capacity: 42, availableSlots: 42 });
    });

    it('should allow lowering the capacity to exactly the booked slots (nothing left to book)', async () => {
      const created = await createMatch(t, { capacity: 10 });
      await book(t, 'erin', created.id, 4);

      const response = await request(t.server)
        .patch(`${API}/matches/${created.id}`)
        .set('Authorization', adminAuth(t))
        .send({ capacity: 4 });

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ capacity: 4, bookedSlots: 4, availableSlots: 0 });
    });

    it('should answer 409 capacity-below-booked with bookedSlots, and keep the capacity, when capacity goes below the booked slots', async () => {
      const created = await createMatch(t, { capacity: 10 });
      await book(t, 'frank', created.id, 6);

      const response = await request(t.server)
        .patch(`${API}/matches/${created.id}`)
        .set('Authorization', adminAuth(t))
        .send({ capacity: 5 });

      const problem = expectProblem(response, 409);
      expect(problem).toMatchObject({
        type: '/problems/capacity-below-booked',
        matchId: created.id,
        requestedCapacity: 5,
        bookedSlots: 6,
      });
      expect(await getMatch(t, created.id)).toMatchObject({ capacity: 10, bookedSlots: 6, availableSlots: 4 });
    });

    it('should change nothing when a capacity change is refused together with a title change', async () => {
      const created = await createMatch(t, { title: 'Unchanged', capacity: 3 });
      await book(t, 'gina', created.id, 3);

      const response = await request(t.server)
        .patch(`${API}/matches/${created.id}`)
        .set('Authorization', adminAuth(t))
        .send({ title: 'Changed', capacity: 2 });

      expectProblem(response, 409);
      expect(await getMatch(t, created.id)).toMatchObject({ title: 'Unchanged', capacity: 3, bookedSlots: 3 });
    });

    it('should answer 400 naming body when the body is empty', async () => {
      const created = await createMatch(t);

      const response = await request(t.server).patch(`${API}/matches/${created.id}`).set('Authorization', adminAuth(t)).send({});

      expectProblem(response, 400, 'body');
      expect(await getMatch(t, created.id)).toEqual(created);
    });

    it('should answer 404 match-not-found when no match has the id', async () => {
      const response = await request(t.server)
        .patch(`${API}/matches/${UNKNOWN_ID}`)
        .set('Authorization', adminAuth(t))
        .send({ title: 'Ghost' });

      const problem = expectProblem(response, 404);
      expect(problem).toMatchObject({ type: '/problems/match-not-found', matchId: UNKNOWN_ID });
    });

    it('should answer 403 and change nothing when the caller is not an admin', async () => {
      const created = await createMatch(t, { capacity: 5 });

      const response = await request(t.server)
        .patch(`${API}/matches/${created.id}`)
        .set('Authorization', customerAuth(t, 'harry'))
        .send({ capacity: 500 });

      expectProblem(response, 403);
      expect(await getMatch(t, created.id)).toEqual(created);
    });
  });
});
