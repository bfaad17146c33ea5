import type { Client } from 'pg';
import { signAccessToken } from '../../src/auth/jwt';
import { DEVELOPMENT_JWT_SECRET } from '../../src/config/app-config';
import { CommitCuttingProxy } from '../support/commit-cutting-proxy';
import { connectClient, type InProcessApp, insertMatch, report, startInProcessApp } from '../support/faults';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';

const OUTCOME_CHECK_TIMEOUT_MS = 1_500;

interface Answer {
  status: number;
  headers: Headers;
  body: { id?: string; type?: string; bookingId?: string; holdId?: string; status?: string; retryAfterSeconds?: number };
}

/**
 * The connection to PostgreSQL fails after COMMIT was sent: the service cannot know whether the
 * write committed. It must find out (the ids it wrote tell) and answer what really happened,
 * and when it cannot, answer outcome-unknown naming the id, never a plain 503 that invites a
 * retry which would book twice. A proxy between the service and PostgreSQL cuts the connection
 * exactly there: after PostgreSQL has answered COMMIT, or instead of sending COMMIT on.
 */
describe('a write whose connection fails during COMMIT', () => {
  let databaseUrl: string;
  let observer: Client;
  let proxy: CommitCuttingProxy;
  let service: InProcessApp;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    observer = await connectClient(databaseUrl);
    const target = new URL(databaseUrl);
    proxy = await CommitCuttingProxy.start(target.hostname, Number(target.port || 5432));
    // No background job may commit through the proxy: the next COMMIT it sees is the test's.
    service = await startInProcessApp(proxy.route(databaseUrl), {
      DATABASE_OUTCOME_CHECK_TIMEOUT_MS: String(OUTCOME_CHECK_TIMEOUT_MS),
      DATABASE_POOL_WAIT_TIMEOUT_MS: '500',
      HOLD_SWEEP_INTERVAL_MS: '0',
      RECONCILE_INTERVAL_MS: '0',
      IDEMPOTENCY_PURGE_INTERVAL_MS: '0',
      EVENT_PURGE_INTERVAL_MS: '0',
    });
  });
  afterAll(async () => {
    await service?.close();
    await proxy?.close();
    await observer?.end();
    await dropTestDatabase(databaseUrl);
  });

  async function send(method: string, path: string, customer: string, body?: unknown, key?: string): Promise<Answer> {
    const response = await fetch(`${service.baseUrl}/api/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${signAccessToken({ sub: customer, admin: false }, DEVELOPMENT_JWT_SECRET, 60)}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...(key === undefined ? {} : { 'idempotency-key': key }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await response.text();
    return { status: response.status, headers: response.headers, body: text ? (JSON.parse(text) as Answer['body']) : {} };
  }

  async function countersOf(matchId: string): Promise<{ booked: number; held: number; bookings: number; holds: number }> {
    const { rows } = await observer.query<{ booked: number; held: number; bookings: number; holds: number }>(
      `SELECT booked_slots AS booked, held_slots AS held,
              (SELECT count(*)::int FROM bookings WHERE match_id = m.id AND status = 'confirmed') AS bookings,
              (SELECT count(*)::int FROM holds WHERE match_id = m.id AND status = 'active') AS holds
         FROM matches m WHERE id = $1`,
      [matchId],
    );
    return rows[0]!;
  }

  it('should answer 201 with the booking when COMMIT went through and the database answers again', async () => {
    const matchId = await insertMatch(observer, 10);
    const cut = proxy.arm('after-commit');

    const answer = await send('POST', `/matches/${matchId}/bookings`, 'committed', { slots: 2 });
    await cut;

    expect(answer.status).toBe(201);
    const { rows } = await observer.query<{ id: string }>(`SELECT id FROM bookings WHERE customer_id = 'committed'`);
    expect(rows).toEqual([{ id: answer.body.id }]);
    expect(await countersOf(matchId)).toEqual({ booked: 2, held: 0, bookings: 1, holds: 0 });
  });

  it('should answer a plain 503 (retry is safe) when COMMIT never reached the database, and book nothing', async () => {
    const matchId = await insertMatch(observer, 10);
    const cut = proxy.arm('instead-of-commit');

    const answer = await send('POST', `/matches/${matchId}/bookings`, 'rolled-back', { slots: 2 });
    await cut;

    expect(answer.status).toBe(503);
    expect(answer.body.type).toBe('/problems/database-unavailable');
    expect(await countersOf(matchId)).toEqual({ booked: 0, held: 0, bookings: 0, holds: 0 });
  });

  it('should answer outcome-unknown naming the booking when the database cannot be asked in time, and replay the booking on a retry with the key', async () => {
    const matchId = await insertMatch(observer, 10);
    const cut = proxy.arm('after-commit', OUTCOME_CHECK_TIMEOUT_MS + 1_500);

    const started = performance.now();
    const answer = await send('POST', `/matches/${matchId}/bookings`, 'in-doubt', { slots: 1 }, 'in-doubt-key');
    const elapsedMs = performance.now() - started;
    await cut;

    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ type: '/problems/outcome-unknown', retryAfterSeconds: 2, bookingId: expect.any(String) });
    expect(answer.headers.get('retry-after')).toBe('2');
    expect(elapsedMs).toBeGreaterThanOrEqual(OUTCOME_CHECK_TIMEOUT_MS - 50);
    // It did commit: the booking it names exists.
    const { rows } = await observer.query<{ id: string }>(`SELECT id FROM bookings WHERE customer_id = 'in-doubt'`);
    expect(rows).toEqual([{ id: answer.body.bookingId }]);

    await new Promise((resolve) => setTimeout(resolve, 1_600)); // the database is reachable again
    const retry = await send('POST', `/matches/${matchId}/bookings`, 'in-doubt', { slots: 1 }, 'in-doubt-key');
    expect(retry.status).toBe(201);
    expect(retry.headers.get('idempotent-replayed')).toBe('true');
    expect(retry.body.id).toBe(answer.body.bookingId);
    expect((await send('GET', `/bookings/${answer.body.bookingId}`, 'in-doubt')).status).toBe(200);
    expect(await countersOf(matchId)).toEqual({ booked: 1, held: 0, bookings: 1, holds: 0 });
    report(`outcome unknown: answered after ${Math.round(elapsedMs)} ms (DATABASE_OUTCOME_CHECK_TIMEOUT_MS ${OUTCOME_CHECK_TIMEOUT_MS})`);
  });

  it('should answer 201 with the hold when its COMMIT went through, holding the slots once', async () => {
    const matchId = await insertMatch(observer, 10);
    const cut = proxy.arm('after-commit');

    const answer = await send('POST', `/matches/${matchId}/holds`, 'holder', { slots: 3 });
    await cut;

    expect(answer.status).toBe(201);
    expect(answer.body.status).toBe('active');
    const { rows } = await observer.query<{ id: string }>(`SELECT id FROM holds WHERE match_id = $1`, [matchId]);
    expect(rows).toEqual([{ id: answer.body.id }]);
    expect(await countersOf(matchId)).toEqual({ booked: 0, held: 3, bookings: 0, holds: 1 });
  });

  it('should answer outcome-unknown naming the hold when the database cannot be asked in time', async () => {
    const matchId = await insertMatch(observer, 10);
    const cut = proxy.arm('after-commit', OUTCOME_CHECK_TIMEOUT_MS + 1_500);

    const answer = await send('POST', `/matches/${matchId}/holds`, 'unsure-holder', { slots: 1 });
    await cut;

    expect(answer.status).toBe(503);
    expect(answer.body).toMatchObject({ type: '/problems/outcome-unknown', holdId: expect.any(String) });
    const { rows } = await observer.query<{ id: string }>(`SELECT id FROM holds WHERE match_id = $1`, [matchId]);
    expect(rows).toEqual([{ id: answer.body.holdId }]);
    await new Promise((resolve) => setTimeout(resolve, 1_600));
  });

  it('should answer 201 with the booking when a hold confirmation committed, and a plain 503 when it rolled back', async () => {
    const matchId = await insertMatch(observer, 10);
    const hold = await send('POST', `/matches/${matchId}/holds`, 'confirmer', { slots: 2 });
    expect(hold.status).toBe(201);
    const other = await send('POST', `/matches/${matchId}/holds`, 'confirmer', { slots: 1 });
    expect(other.status).toBe(201);

    let cut = proxy.arm('after-commit');
    const confirmed = await send('POST', `/holds/${hold.body.id}/confirm`, 'confirmer');
    await cut;
    expect(confirmed.status).toBe(201);
    expect(confirmed.body).toMatchObject({ slots: 2, status: 'confirmed' });

    cut = proxy.arm('instead-of-commit');
    const rolledBack = await send('POST', `/holds/${other.body.id}/confirm`, 'confirmer');
    await cut;
    expect(rolledBack.status).toBe(503);
    expect(rolledBack.body.type).toBe('/problems/database-unavailable');

    const { rows } = await observer.query<{ id: string; status: string; booking_id: string | null }>(
      'SELECT id, status, booking_id FROM holds WHERE match_id = $1 ORDER BY slots DESC',
      [matchId],
    );
    expect(rows).toEqual([
      { id: hold.body.id, status: 'confirmed', booking_id: confirmed.body.id },
      { id: other.body.id, status: 'active', booking_id: null },
    ]);
    expect(await countersOf(matchId)).toEqual({ booked: 2, held: 1, bookings: 1, holds: 1 });
  });
});
