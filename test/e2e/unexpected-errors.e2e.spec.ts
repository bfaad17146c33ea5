import request from 'supertest';
import { startTestApp, type TestApp } from '../support/test-app';
import { adminAuth, API, book, createMatch, customerAuth, expectProblem, LEAK_MARKERS } from './helpers';

/**
 * A real unexpected failure: this file's own database loses a column and a table under the
 * running app, so the SQL of the app fails. The answer must be a generic 500 problem that
 * reveals nothing of the SQL, the schema or the stack.
 */
describe('Unexpected errors', () => {
  let t: TestApp;
  let matchId: string;
  let bookingId: string;

  beforeAll(async () => {
    t = await startTestApp();
    matchId = (await createMatch(t, { capacity: 10 })).id;
    bookingId = (await book(t, 'alice', matchId, 2)).id;
    // Break the schema under the running app.
    await t.dataSource.query('ALTER TABLE matches RENAME COLUMN title TO secret_title_column');
    await t.dataSource.query('ALTER TABLE bookings RENAME TO secret_bookings_table');
  });

  afterAll(async () => {
    await t.close();
  });

  it.each([
    ['GET /api/v1/matches', () => request(t.server).get(`${API}/matches`).set('Authorization', adminAuth(t))],
    ['GET /api/v1/matches/:id', () => request(t.server).get(`${API}/matches/${matchId}`).set('Authorization', adminAuth(t))],
    [
      'POST /api/v1/matches',
      () =>
        request(t.server)
          .post(`${API}/matches`)
          .set('Authorization', adminAuth(t))
          .send({ title: 'Broken', startsAt: '2026-12-01T18:30:00Z', capacity: 1 }),
    ],
    [
      'PATCH /api/v1/matches/:id',
      () => request(t.server).patch(`${API}/matches/${matchId}`).set('Authorization', adminAuth(t)).send({ capacity: 20 }),
    ],
    [
      'POST /api/v1/matches/:id/bookings',
      () =>
        request(t.server)
          .post(`${API}/matches/${matchId}/bookings`)
          .set('Authorization', customerAuth(t, 'alice'))
          .send({ slots: 1 }),
    ],
    ['GET /api/v1/bookings', () => request(t.server).get(`${API}/bookings`).set('Authorization', customerAuth(t, 'alice'))],
    ['GET /api/v1/bookings/:id', () => request(t.server).get(`${API}/bookings/${bookingId}`).set('Authorization', customerAuth(t, 'alice'))],
    [
      'POST /api/v1/bookings/:id/cancel',
      () => request(t.server).post(`${API}/bookings/${bookingId}/cancel`).set('Authorization', customerAuth(t, 'alice')),
    ],
  ])('should answer %s with a generic 500 problem+json without SQL, schema names or stack trace', async (_endpoint, send) => {
    const response = await send();

    const { requestId, ...problem } = expectProblem(response, 500);
    expect(problem).toEqual({
      type: 'about:blank',
      title: 'Internal Server Error',
      status: 500,
      detail: 'An unexpected error occurred; it has been logged',
      instance: expect.any(String),
    });
    // An opaque id to find the logged error by, if the service sends one; nothing else.
    expect(requestId === undefined || (typeof requestId === 'string' && /^[\w-]{1,100}$/.test(requestId))).toBe(true);
    for (const marker of [...LEAK_MARKERS, 'secret_title_column', 'secret_bookings_table']) {
      expect(response.text).not.toContain(marker);
    }
  });

  it('should keep serving after unexpected errors (liveness still answers 200)', async () => {
    await request(t.server).get(`${API}/matches`).set('Authorization', adminAuth(t)).expect(500);

    const response = await request(t.server).get('/health/live');

    expect(response.status).toBe(200);
  });
});
