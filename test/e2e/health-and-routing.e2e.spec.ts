import request from 'supertest';
import { startTestApp, type TestApp } from '../support/test-app';
import { adminAuth, API, createMatch, expectProblem } from './helpers';

describe('Health checks and routing', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await startTestApp();
  });

  afterAll(async () => {
    await t.close();
  });

  describe('health', () => {
    it('should answer GET /health/live with 200 and status ok, without a token', async () => {
      const response = await request(t.server).get('/health/live');

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'ok' });
    });

    it('should answer GET /health/ready with 200 and the database up, without a token', async () => {
      const response = await request(t.server).get('/health/ready');

      expect(response.status).toBe(200);
      expect(response.body).toMatchObject({ status: 'ok', details: { database: { status: 'up' } } });
    });

    it('should serve the health checks outside the API prefix only', async () => {
      const response = await request(t.server).get(`${API}/health/live`);

      expectProblem(response, 404);
    });
  });

  describe('unknown routes', () => {
    it.each([
      ['GET', `${API}/nope`],
      ['GET', `${API}/matches/${'0'.repeat(8)}-0000-0000-0000-000000000000/nope`],
      ['POST', `${API}/bookings`],
      ['PUT', `${API}/matches`],
      ['DELETE', `${API}/bookings`],
      ['GET', '/api/v2/matches'],
      ['GET', '/nope'],
      ['GET', '/'],
      ['POST', '/nope'],
      ['DELETE', '/health/live'],
    ])('should answer %s %s with 404 problem+json, with or without a token', async (method, path) => {
      const anonymous = await request(t.server)[method.toLowerCase() as 'get'](path);
      const withToken = await request(t.server)[method.toLowerCase() as 'get'](path).set('Authorization', adminAuth(t));

      expect(expectProblem(anonymous, 404)).toMatchObject({ type: 'about:blank', title: 'Not Found' });
      expect(expectProblem(withToken, 404)).toMatchObject({ type: 'about:blank', title: 'Not Found' });
    });

    it('should answer a method a known path does not support with 404 problem+json, and change nothing', async () => {
      const match = await createMatch(t);

      const response = await request(t.server).delete(`${API}/matches/${match.id}`).set('Authorization', adminAuth(t));

      expectProblem(response, 404);
      await request(t.server).get(`${API}/matches/${match.id}`).set('Authorization', adminAuth(t)).expect(200);
    });
  });

  describe('error bodies', () => {
    it('should answer every kind of error as problem+json with type, title, status and detail', async () => {
      const match = await createMatch(t, { capacity: 0 });
      const admin = adminAuth(t);
      const responses = [
        [400, await request(t.server).get(`${API}/matches/not-a-uuid`).set('Authorization', admin)],
        [401, await request(t.server).get(`${API}/matches`)],
        [403, await request(t.server).post(`${API}/matches`).set('Authorization', `Bearer ${t.token('c')}`).send({})],
        [404, await request(t.server).get(`${API}/bookings/${match.id}`).set('Authorization', admin)],
        [409, await request(t.server).post(`${API}/matches/${match.id}/bookings`).set('Authorization', admin).send({ slots: 1 })],
        [413, await request(t.server).post(`${API}/matches`).set('Authorization', admin).send({ title: 'x'.repeat(20_000) })],
        [415, await request(t.server).post(`${API}/matches`).set('Authorization', admin).set('Content-Type', 'text/plain').send('x')],
      ] as const;

      for (const [status, response] of responses) {
        const problem = expectProblem(response, status);
        expect(problem.instance).toEqual(expect.stringMatching(/^\//));
      }
    });
  });
});
