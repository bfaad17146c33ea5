import type { AddressInfo } from 'node:net';
import type { Client } from 'pg';
import { bookingState, bookOverHttp, connectClient, getStatus, insertMatch, report, waitFor } from '../support/faults';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * Every pooled connection is taken by a booking batch that waits on rows locked by another
 * client (bookings of one match share one batch, so it takes several matches; see
 * coalescing-queue.ts): a new request must not wait without bound, neither in the booking queue
 * nor for the pool, and the health endpoints must not queue behind them.
 */
describe('a pool exhausted by bookings waiting on locked rows', () => {
  const POOL_MAX = 2;
  const POOL_WAIT_TIMEOUT_MS = 500;
  const HEALTH_CHECK_TIMEOUT_MS = 1_000;
  let t: TestApp;
  let baseUrl: string;
  let holder: Client;
  let observer: Client;

  beforeAll(async () => {
    t = await startTestApp({
      DATABASE_POOL_MAX: String(POOL_MAX),
      DATABASE_POOL_WAIT_TIMEOUT_MS: String(POOL_WAIT_TIMEOUT_MS),
      DATABASE_LOCK_TIMEOUT_MS: '8000',
      DATABASE_STATEMENT_TIMEOUT_MS: '9000',
      DATABASE_QUERY_TIMEOUT_MS: '10000',
      HEALTH_CHECK_TIMEOUT_MS: String(HEALTH_CHECK_TIMEOUT_MS),
    });
    baseUrl = `http://127.0.0.1:${(t.server.address() as AddressInfo).port}`;
    holder = await connectClient(t.databaseUrl);
    observer = await connectClient(t.databaseUrl);
  });
  afterAll(async () => {
    await holder.end();
    await observer.end();
    await t.close();
  });

  it('should answer a new request 503 with Retry-After after at most the pool wait timeout, while liveness and readiness stay responsive', async () => {
    const QUEUED = 6;
    const locked: string[] = [];
    for (let i = 0; i < QUEUED; i += 1) locked.push(await insertMatch(observer, 100));
    const cold = await insertMatch(observer, 100);
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM matches WHERE id = ANY($1::uuid[]) FOR UPDATE', [locked]);

    const lockedBookings = locked.map((matchId, i) => bookOverHttp(baseUrl, matchId, `locked-${i}`, 15_000));
    // Both pooled connections are taken once two bookings wait on a row lock.
    await waitFor(
      'every pooled connection to wait on a locked row',
      async () => {
        const { rows } = await observer.query<{ waiting: string }>(
          `SELECT count(*) AS waiting FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'match-booking' AND wait_event_type = 'Lock'`,
        );
        return Number(rows[0]!.waiting) === POOL_MAX;
      },
      { timeoutMs: 5_000, intervalMs: 20 },
    );

    const [fresh, live, ready] = await Promise.all([
      bookOverHttp(baseUrl, cold, 'fresh', 10_000),
      getStatus(`${baseUrl}/health/live`),
      getStatus(`${baseUrl}/health/ready`),
    ]);
    report(
      `pool exhausted: new booking answered ${fresh.status} after ${Math.round(fresh.elapsedMs)} ms (pool wait timeout ${POOL_WAIT_TIMEOUT_MS} ms); ` +
        `/health/live ${live.status} in ${Math.round(live.elapsedMs)} ms, /health/ready ${ready.status} in ${Math.round(ready.elapsedMs)} ms`,
    );
    expect(fresh).toMatchObject({
      status: 503,
      retryAfter: '2',
      contentType: expect.stringContaining('application/problem+json'),
      body: { type: '/problems/database-unavailable', status: 503 },
    });
    expect(fresh.elapsedMs).toBeGreaterThanOrEqual(POOL_WAIT_TIMEOUT_MS - 50);
    expect(fresh.elapsedMs).toBeLessThan(POOL_WAIT_TIMEOUT_MS + 1_000);
    expect(live.status).toBe(200);
    expect(live.elapsedMs).toBeLessThan(POOL_WAIT_TIMEOUT_MS); // not queued behind the pool
    // Readiness pings on its own connection: not stuck behind the queue, and the database is fine.
    expect(ready.status).toBe(200);
    expect(ready.elapsedMs).toBeLessThan(HEALTH_CHECK_TIMEOUT_MS);

    await holder.query('ROLLBACK');
    const results = await Promise.all(lockedBookings);
    // The batches that held a connection book once the locks are free; a batch that started
    // after the others stalled, and found no free connection, gave up at the pool wait timeout.
    expect(results.filter((r) => r.status === 201).length).toBeGreaterThanOrEqual(POOL_MAX);
    for (const result of results.filter((r) => r.status !== 201)) {
      expect(result).toMatchObject({ status: 503, retryAfter: '2', body: { type: '/problems/database-unavailable' } });
    }

    const states = await Promise.all(locked.map((matchId) => bookingState(observer, matchId)));
    expect(states.reduce((sum, state) => sum + state.bookedSlots, 0)).toBe(results.filter((r) => r.status === 201).length);
    for (const state of states) expect(state.confirmedSlots).toBe(state.bookedSlots);
    expect(states.flatMap((state) => state.confirmedIds).sort()).toEqual(results.filter((r) => r.status === 201).map((r) => String(r.body.id)).sort());
    expect(await bookingState(observer, cold)).toEqual({ bookedSlots: 0, confirmedSlots: 0, confirmedIds: [] });
    // The pool serves again at once.
    await expect(bookOverHttp(baseUrl, cold, 'after', 5_000)).resolves.toMatchObject({ status: 201 });
  });
});
