import request from 'supertest';
import { startTestApp, type TestApp } from '../support/test-app';
import { API, book, createMatch, customerAuth, expectProblem, getMatch } from './helpers';

describe('Bookings with BOOKING_MAX_SLOTS=3', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp({ BOOKING_MAX_SLOTS: '3' });
  });

  afterAll(async () => {
    await t.close();
  });

  it('should accept a booking of exactly BOOKING_MAX_SLOTS slots', async () => {
    const match = await createMatch(t, { capacity: 10 });

    const booking = await book(t, 'alice', match.id, 3);

    expect(booking).toMatchObject({ slots: 3, status: 'confirmed' });
  });

  it.each([4, 10])('should answer 400 naming slots, and book nothing, when slots is %p (above BOOKING_MAX_SLOTS)', async (slots) => {
    const match = await createMatch(t, { capacity: 10 });

    const response = await request(t.server)
      .post(`${API}/matches/${match.id}/bookings`)
      .set('Authorization', customerAuth(t, 'alice'))
      .send({ slots });

    const problem = expectProblem(response, 400, 'slots');
    expect(problem.type).toBe('/problems/validation-failed');
    expect(problem.detail).toContain('3');
    expect(await getMatch(t, match.id)).toMatchObject({ bookedSlots: 0, availableSlots: 10 });
  });

  it('should still refuse 0 slots', async () => {
    const match = await createMatch(t, { capacity: 10 });

    const response = await request(t.server)
      .post(`${API}/matches/${match.id}/bookings`)
      .set('Authorization', customerAuth(t, 'alice'))
      .send({ slots: 0 });

    expectProblem(response, 400, 'slots');
  });
});
