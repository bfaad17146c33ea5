import request from 'supertest';
import { startTestApp, type TestApp } from '../support/test-app';

describe('smoke', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  it('should create a match and book it', async () => {
    const created = await request(t.server)
      .post('/api/v1/matches')
      .set('Authorization', `Bearer ${t.token('admin', { admin: true })}`)
      .send({ title: 'Final', startsAt: '2026-12-01T18:30:00Z', capacity: 2 })
      .expect(201);
    const booked = await request(t.server)
      .post(`/api/v1/matches/${created.body.id}/bookings`)
      .set('Authorization', `Bearer ${t.token('alice')}`)
      .send({ slots: 2 })
      .expect(201);
    expect(booked.body).toMatchObject({ matchId: created.body.id, customerId: 'alice', slots: 2, status: 'confirmed' });
  });
});
