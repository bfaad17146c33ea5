import { Client } from 'pg';
import request from 'supertest';
import { IdempotencyPurger } from '../../src/idempotency/idempotency-purger';
import { signAccessToken } from '../../src/auth/jwt';
import { DEVELOPMENT_JWT_SECRET } from '../../src/config/app-config';
import { createMatch, matchCounters } from '../support/fixtures';
import { sharedRedisUrl } from '../support/redis-server';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';
import { startTestApp, type TestApp } from '../support/test-app';
import { createTestDatabase } from '../support/test-database';

/** Idempotency-Key on writes: one effect per key, replayed answers, and nothing stored that should be retried. */
describe.each([
  ['without Redis (PostgreSQL alone)', {}],
  ['with Redis', { REDIS_URL: sharedRedisUrl() }],
])('Idempotency-Key %s', (_mode, env: Record<string, string>) => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp(env);
  });
  afterAll(async () => {
    await t.close();
  });

  const key = () => `key-${Math.random().toString(36).slice(2)}`;
  const book = (matchId: string, idempotencyKey: string | undefined, slots = 1, customer = 'alice') => {
    const call = request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', `Bearer ${t.token(customer)}`);
    if (idempotencyKey !== undefined) void call.set('Idempotency-Key', idempotencyKey);
    return call.send({ slots });
  };
  const bookingsOf = async (matchId: string) =>
    Number((await t.dataSource.query<[{ count: string }]>('SELECT count(*) FROM bookings WHERE match_id = $1', [matchId]))[0].count);

  it('should replay the first answer to the same request, marked as replayed, and book once', async () => {
    const matchId = await createMatch(t, 5);
    const k = key();
    const first = await book(matchId, k).expect(201);
    const again = await book(matchId, k).expect(201);

    expect(first.headers['idempotent-replayed']).toBeUndefined();
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toEqual(first.body);
    expect(await bookingsOf(matchId)).toBe(1);
  });

  it('should scope each key to the method and route template, as records written by earlier versions are', async () => {
    const customer = `scoped-${key()}`;
    const auth = `Bearer ${t.token(customer)}`;
    const matchId = await createMatch(t, 10);
    const otherMatchId = await createMatch(t, 10);
    const booking = (await book(matchId, key(), 1, customer).expect(201)).body as { id: string };
    await request(t.server).post(`/api/v1/bookings/${booking.id}/reschedule`).set('Authorization', auth).set('Idempotency-Key', key()).send({ toMatchId: otherMatchId }).expect(200);
    await request(t.server).post(`/api/v1/bookings/${booking.id}/cancel`).set('Authorization', auth).set('Idempotency-Key', key()).expect(200);
    const hold = (await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', auth).set('Idempotency-Key', key()).send({ slots: 1 }).expect(201)).body as { id: string };
    await request(t.server).post(`/api/v1/holds/${hold.id}/confirm`).set('Authorization', auth).set('Idempotency-Key', key()).expect(201);

    const rows = await t.dataSource.query<Array<{ endpoint: string; response_status: number }>>(
      'SELECT endpoint, response_status FROM idempotency_keys WHERE customer_id = $1 ORDER BY created_at',
      [customer],
    );
    expect(rows).toEqual([
      { endpoint: 'POST /api/v1/matches/:id/bookings', response_status: 201 },
      { endpoint: 'POST /api/v1/bookings/:id/reschedule', response_status: 200 },
      { endpoint: 'POST /api/v1/bookings/:id/cancel', response_status: 200 },
      { endpoint: 'POST /api/v1/matches/:id/holds', response_status: 201 },
      { endpoint: 'POST /api/v1/holds/:id/confirm', response_status: 201 },
    ]);
  });

  it('should turn 50 concurrent identical requests with one key into exactly one booking', async () => {
    const matchId = await createMatch(t, 100);
    const k = key();
    const responses = await Promise.all(Array.from({ length: 50 }, () => book(matchId, k)));

    for (const response of responses) expect([201, 409]).toContain(response.status);
    const created = responses.filter((r) => r.status === 201);
    expect(created.length).toBeGreaterThanOrEqual(1);
    expect(new Set(created.map((r) => (r.body as { id: string }).id)).size).toBe(1);
    for (const busy of responses.filter((r) => r.status === 409)) {
      expect(busy.body).toMatchObject({ type: '/problems/idempotency-in-flight' });
      expect(busy.headers['retry-after']).toBe('1');
    }
    expect(await bookingsOf(matchId)).toBe(1);
    expect(await matchCounters(t, matchId)).toMatchObject({ bookedSlots: 1, confirmedSlots: 1 });
    await book(matchId, k).expect(201).expect('Idempotent-Replayed', 'true');
  });

  it('should answer 422 to the same key with a different request, and keep keys per customer and per endpoint', async () => {
    const matchId = await createMatch(t, 5);
    const k = key();
    await book(matchId, k, 1).expect(201);

    const reused = await book(matchId, k, 2).expect(422);
    expect(reused.body).toMatchObject({ type: '/problems/idempotency-key-reused' });
    await book(matchId, k, 1, 'bob').expect(201).expect((r) => expect(r.headers['idempotent-replayed']).toBeUndefined());
    await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', `Bearer ${t.token('alice')}`).set('Idempotency-Key', k).send({ slots: 1 }).expect(201);
    expect(await bookingsOf(matchId)).toBe(2);
  });

  it('should not store a 409, so a retry with the same key can succeed later', async () => {
    const matchId = await createMatch(t, 1);
    const k = key();
    await book(matchId, k, 2).expect(409);
    await request(t.server).patch(`/api/v1/matches/${matchId}`).set('Authorization', `Bearer ${t.token('admin', { admin: true })}`).send({ capacity: 5 }).expect(200);

    const retried = await book(matchId, k, 2).expect(201);
    expect(retried.headers['idempotent-replayed']).toBeUndefined();
  });

  it('should answer 409 with Retry-After while the first request with the key is still running', async () => {
    const matchId = await createMatch(t, 5);
    const k = key();
    const holder = new Client({ connectionString: t.databaseUrl });
    await holder.connect();
    try {
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
      const first = book(matchId, k).then((r) => r);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const second = await book(matchId, k).expect(409);
      expect(second.headers['retry-after']).toBe('1');
      await holder.query('ROLLBACK');
      expect((await first).status).toBe(201);
    } finally {
      await holder.end();
    }
    await book(matchId, k).expect(201).expect('Idempotent-Replayed', 'true');
  });

  it('should replay cancellations, reschedules and hold confirmations too', async () => {
    const [from, to] = [await createMatch(t, 5), await createMatch(t, 5)];
    const booking = (await book(from, undefined, 2).expect(201)).body as { id: string };
    const auth = `Bearer ${t.token('alice')}`;
    const rk = key();
    await request(t.server).post(`/api/v1/bookings/${booking.id}/reschedule`).set('Authorization', auth).set('Idempotency-Key', rk).send({ toMatchId: to }).expect(200);
    await request(t.server).post(`/api/v1/bookings/${booking.id}/reschedule`).set('Authorization', auth).set('Idempotency-Key', rk).send({ toMatchId: to }).expect(200).expect('Idempotent-Replayed', 'true');
    const ck = key();
    await request(t.server).post(`/api/v1/bookings/${booking.id}/cancel`).set('Authorization', auth).set('Idempotency-Key', ck).expect(200);
    await request(t.server).post(`/api/v1/bookings/${booking.id}/cancel`).set('Authorization', auth).set('Idempotency-Key', ck).expect(200).expect('Idempotent-Replayed', 'true');
    const hold = (await request(t.server).post(`/api/v1/matches/${from}/holds`).set('Authorization', auth).send({ slots: 1 }).expect(201)).body as { id: string };
    const hk = key();
    const confirmed = await request(t.server).post(`/api/v1/holds/${hold.id}/confirm`).set('Authorization', auth).set('Idempotency-Key', hk).expect(201);
    const replayed = await request(t.server).post(`/api/v1/holds/${hold.id}/confirm`).set('Authorization', auth).set('Idempotency-Key', hk).expect(201);
    expect(replayed.headers['idempotent-replayed']).toBe('true');
    expect(replayed.body).toEqual(confirmed.body);
    expect(await matchCounters(t, to)).toMatchObject({ bookedSlots: 0, confirmedSlots: 0 });
    expect(await matchCounters(t, from)).toMatchObject({ bookedSlots: 1, confirmedSlots: 1 });
  });

  it('should refuse a malformed key with 400 naming the header', async () => {
    const matchId = await createMatch(t, 5);
    const response = await book(matchId, 'x'.repeat(256)).expect(400);
    expect(response.body.errors).toEqual([expect.objectContaining({ field: 'Idempotency-Key' })]);
    expect(await bookingsOf(matchId)).toBe(0);
  });

  it('should purge expired keys from PostgreSQL', async () => {
    const matchId = await createMatch(t, 5);
    const k = key();
    await book(matchId, k).expect(201);
    await t.dataSource.query(`UPDATE idempotency_keys SET expires_at = now() - interval '1 second' WHERE key = $1`, [k]);

    await expect(t.app.get(IdempotencyPurger).runOnce()).resolves.toBeGreaterThanOrEqual(1);
    const [{ count }] = await t.dataSource.query<[{ count: string }]>('SELECT count(*) FROM idempotency_keys WHERE key = $1', [k]);
    expect(Number(count)).toBe(0);
  });
});

describe('Idempotency-Key across a crash', () => {
  let databaseUrl: string;
  let first: ServiceProcess | undefined;
  let second: ServiceProcess | undefined;
  afterAll(async () => {
    if (first) await stopServiceProcess(first);
    if (second) await stopServiceProcess(second);
  });

  it('should give a retry the booking committed by an instance killed before it answered', async () => {
    databaseUrl = await createTestDatabase();
    first = await startServiceProcess({ DATABASE_URL: databaseUrl });
    second = await startServiceProcess({ DATABASE_URL: databaseUrl });
    const listener = new Client({ connectionString: databaseUrl });
    await listener.connect();
    try {
      const { rows } = await listener.query<{ id: string }>(`INSERT INTO matches (title, starts_at, capacity) VALUES ('m', now(), 5) RETURNING id`);
      const matchId = rows[0]!.id;
      // NOTIFY is delivered at COMMIT: the first instance is killed the moment its booking commits.
      await listener.query(`CREATE FUNCTION notify_idempotency() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN PERFORM pg_notify('idempotency_committed', NEW.key); RETURN NEW; END $$`);
      await listener.query(`CREATE TRIGGER notify_idempotency AFTER INSERT ON idempotency_keys FOR EACH ROW EXECUTE FUNCTION notify_idempotency()`);
      await listener.query('LISTEN idempotency_committed');
      const victim = first;
      listener.on('notification', () => victim.child.kill('SIGKILL'));

      const token = signAccessToken({ sub: 'alice', admin: false }, DEVELOPMENT_JWT_SECRET, 60);
      const send = (service: ServiceProcess) =>
        fetch(`${service.baseUrl}/api/v1/matches/${matchId}/bookings`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, 'idempotency-key': 'crash-1' },
          body: JSON.stringify({ slots: 2 }),
        });
      const lost = await send(first).then(
        (response) => `answered ${response.status}`,
        () => 'no answer',
      );
      await first.exited;
      const retry = await send(second);

      process.stdout.write(`idempotency crash test: first instance ${lost} before it was killed\n`);
      expect(retry.status).toBe(201);
      expect(retry.headers.get('idempotent-replayed')).toBe('true');
      const committed = await listener.query<{ id: string }>('SELECT id FROM bookings WHERE match_id = $1', [matchId]);
      expect(committed.rows).toHaveLength(1);
      expect(((await retry.json()) as { id: string }).id).toBe(committed.rows[0]!.id);
    } finally {
      await listener.end();
    }
  });
});
