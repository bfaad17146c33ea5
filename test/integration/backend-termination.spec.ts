import type { Client } from 'pg';
import {
  bookingState,
  bookOverHttp,
  connectClient,
  type InProcessApp,
  installSlowBookingTrigger,
  insertMatch,
  serviceSessions,
  sleepingBookingBackend,
  startInProcessApp,
  waitFor,
} from '../support/faults';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';

/**
 * pg_terminate_backend on the session of a booking in flight over HTTP (what an operator, a
 * failover or the OOM killer does): the request answers 503, nothing leaks as an unhandled
 * rejection or a "query runner already released" error, and the pool of one replaces the
 * connection.
 */
describe('a backend terminated under a running booking transaction', () => {
  let databaseUrl: string;
  let t: InProcessApp;
  let observer: Client;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);

  beforeAll(async () => {
    process.on('unhandledRejection', onUnhandled);
    databaseUrl = await createTestDatabase();
    t = await startInProcessApp(databaseUrl, { DATABASE_POOL_MAX: '1', LOG_LEVEL: 'debug' });
    observer = await connectClient(databaseUrl);
  });
  afterAll(async () => {
    process.off('unhandledRejection', onUnhandled);
    await observer.end();
    await t.close();
    await dropTestDatabase(databaseUrl);
  });

  const expectNoLeakedErrors = async (): Promise<void> => {
    await new Promise((resolve) => setImmediate(resolve));
    expect(unhandled).toEqual([]);
    expect(t.logs()).not.toMatch(/already released|unhandled|Releasing the connection of transaction/i);
  };

  it('should answer 503 problem+json with no leaked error, and serve the next booking on a new connection', async () => {
    const matchId = await insertMatch(observer, 10);
    await installSlowBookingTrigger(observer, 'doomed', 10);

    const doomed = bookOverHttp(t.baseUrl, matchId, 'doomed', 10_000);
    const { value: pid } = await waitFor('the booking to sleep in the trigger with the row locked', () => sleepingBookingBackend(observer), {
      timeoutMs: 5_000,
      intervalMs: 10,
    });
    await observer.query('SELECT pg_terminate_backend($1)', [pid]);

    const failed = await doomed;
    expect(failed).toMatchObject({
      status: 503,
      retryAfter: '2',
      contentType: expect.stringContaining('application/problem+json'),
      body: { type: '/problems/database-unavailable', status: 503 },
    });
    expect(failed.elapsedMs).toBeLessThan(2_000);
    expect(JSON.stringify(failed.body)).not.toMatch(/terminating connection|administrator command|\.js:\d+/);
    // The logs are captured (so the checks below see them) and tell what happened.
    expect(t.logs()).toMatch(/failed with 503: DatabaseUnavailableError/);

    const next = await bookOverHttp(t.baseUrl, matchId, 'next', 5_000);
    expect(next.status).toBe(201);
    const sessions = await serviceSessions(observer);
    expect(sessions).toHaveLength(1);
    expect(sessions[0]!.pid).not.toBe(pid);

    const state = await bookingState(observer, matchId);
    expect(state).toEqual({ bookedSlots: 1, confirmedSlots: 1, confirmedIds: [next.body.id] });
    await expectNoLeakedErrors();
  });

  it('should drop a terminated idle pooled connection and serve the next booking on a new one', async () => {
    const matchId = await insertMatch(observer, 10);
    await expect(bookOverHttp(t.baseUrl, matchId, 'before', 5_000)).resolves.toMatchObject({ status: 201 });
    const [idle] = await serviceSessions(observer);
    expect(idle).toBeDefined();
    await observer.query('SELECT pg_terminate_backend($1)', [idle!.pid]);
    await waitFor('the terminated session to be gone', async () => (await serviceSessions(observer)).length === 0, { timeoutMs: 5_000 });

    const next = await bookOverHttp(t.baseUrl, matchId, 'after', 5_000);
    expect(next.status).toBe(201);
    const sessions = await serviceSessions(observer);
    expect(sessions.map((session) => session.pid)).not.toContain(idle!.pid);
    const state = await bookingState(observer, matchId);
    expect(state.bookedSlots).toBe(2);
    expect(state.confirmedSlots).toBe(2);
    await expectNoLeakedErrors();
  });
});
