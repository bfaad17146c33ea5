import type { Client } from 'pg';
import {
  bookingState,
  bookOverHttp,
  connectClient,
  FreezableProxy,
  getStatus,
  installSlowBookingTrigger,
  insertMatch,
  report,
  rowLockIsFree,
  serviceSessions,
  sleepingBookingBackend,
  waitFor,
} from '../support/faults';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';

/**
 * A silent network cut between the service and PostgreSQL: a proxy that stops forwarding in
 * both directions but closes nothing, so neither side gets a FIN or RST and TCP keeps
 * acknowledging. Only the timeouts can end it: idle_in_transaction_session_timeout on the
 * server, query_timeout on the client.
 */
describe('a network cut between the service and PostgreSQL while a booking transaction holds a lock', () => {
  const TRIGGER_SLEEP_S = 1;
  const STATEMENT_TIMEOUT_MS = 2_000;
  const QUERY_TIMEOUT_MS = 3_000;
  const IDLE_IN_TRANSACTION_TIMEOUT_MS = 1_000;
  const POOL_MAX = 2;

  let databaseUrl: string;
  let observer: Client;
  let proxy: FreezableProxy;
  let service: ServiceProcess | undefined;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    observer = await connectClient(databaseUrl);
    const target = new URL(databaseUrl);
    proxy = await FreezableProxy.start(target.hostname, Number(target.port || 5432));
  });
  afterAll(async () => {
    if (service) await stopServiceProcess(service);
    await proxy.close();
    await observer.end();
    await dropTestDatabase(databaseUrl);
  });

  it('should free the lock on the server, answer 503 within the query timeout, and recover by itself after the thaw', async () => {
    service = await startServiceProcess({
      DATABASE_URL: proxy.route(databaseUrl),
      DATABASE_POOL_MAX: String(POOL_MAX),
      DATABASE_LOCK_TIMEOUT_MS: '500',
      DATABASE_STATEMENT_TIMEOUT_MS: String(STATEMENT_TIMEOUT_MS),
      DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: String(IDLE_IN_TRANSACTION_TIMEOUT_MS),
      DATABASE_POOL_WAIT_TIMEOUT_MS: '1000',
      HEALTH_CHECK_TIMEOUT_MS: '500',
    });
    const matchId = await insertMatch(observer, 50);
    await installSlowBookingTrigger(observer, 'cut-off', TRIGGER_SLEEP_S);
    await expect(bookOverHttp(service.baseUrl, matchId, 'warm-up')).resolves.toMatchObject({ status: 201 });

    const cutOff = bookOverHttp(service.baseUrl, matchId, 'cut-off', 20_000);
    const { value: backendPid } = await waitFor('the booking to sleep in the trigger with the row locked', () => sleepingBookingBackend(observer), {
      timeoutMs: 5_000,
      intervalMs: 10,
    });
    proxy.freeze();
    const frozenAt = performance.now();
    expect(await rowLockIsFree(observer, matchId)).toBe(false);

    // Server side: the trigger ends, the reply goes into the void, the session idles in its
    // transaction until idle_in_transaction_session_timeout ends it and frees the row.
    const lockBound = TRIGGER_SLEEP_S * 1000 + IDLE_IN_TRANSACTION_TIMEOUT_MS + 1_500;
    const { elapsedMs: lockFreedMs } = await waitFor('the server to free the row lock', () => rowLockIsFree(observer, matchId), {
      timeoutMs: lockBound,
    });
    const { rows: gone } = await observer.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [backendPid]);
    expect(gone).toEqual([]);

    // Client side: query_timeout gives up on the INSERT; the request answers 503 problem+json.
    const failed = await cutOff;
    expect(failed).toMatchObject({
      status: 503,
      contentType: expect.stringContaining('application/problem+json'),
      retryAfter: '2',
      body: { type: '/problems/database-unavailable', status: 503 },
    });
    expect(JSON.stringify(failed.body)).not.toMatch(/stack|at .*\.js|timeout exceeded|Query read/i);
    expect(failed.elapsedMs).toBeLessThan(QUERY_TIMEOUT_MS + 1_000);
    expect((await getStatus(`${service.baseUrl}/health/ready`)).status).toBe(503);

    proxy.thaw();
    const thawedAt = performance.now();
    const { elapsedMs: readyAfterMs } = await waitFor(
      'readiness 200 after the thaw',
      async () => (await getStatus(`${service!.baseUrl}/health/ready`)).status === 200,
      { timeoutMs: 5_000 },
    );
    // Every pooled connection serves again: more bookings than the pool has connections, in a row and at once.
    const booked: string[] = [];
    for (let i = 0; i < POOL_MAX * 2; i += 1) {
      const result = await bookOverHttp(service.baseUrl, matchId, `after-${i}`, 5_000);
      expect(result.status).toBe(201);
      booked.push(String(result.body.id));
    }
    const concurrent = await Promise.all(
      Array.from({ length: POOL_MAX * 2 }, (_, i) => bookOverHttp(service!.baseUrl, matchId, `together-${i}`, 5_000)),
    );
    expect(concurrent.map((result) => result.status)).toEqual(Array(POOL_MAX * 2).fill(201));
    const recoveredMs = performance.now() - thawedAt;

    report(
      `network cut: lock freed by the server ${(lockFreedMs / 1000).toFixed(2)} s after the freeze (bound ${lockBound} ms), ` +
        `request answered 503 after ${(failed.elapsedMs / 1000).toFixed(2)} s (query timeout ${QUERY_TIMEOUT_MS} ms), ` +
        `ready ${(readyAfterMs / 1000).toFixed(2)} s and ${POOL_MAX * 4} bookings done ${(recoveredMs / 1000).toFixed(2)} s after the thaw ` +
        `(frozen ${((thawedAt - frozenAt) / 1000).toFixed(2)} s)`,
    );

    // No dead client left in the pool; no session left in a transaction; nothing lost or invented.
    const sessions = await serviceSessions(observer);
    expect(sessions.length).toBeLessThanOrEqual(POOL_MAX);
    expect(sessions.filter((session) => session.state !== 'idle')).toEqual([]);
    expect(sessions.map((session) => session.pid)).not.toContain(backendPid);
    const state = await bookingState(observer, matchId);
    expect(state.bookedSlots).toBe(state.confirmedSlots);
    expect(state.confirmedIds).toEqual(expect.arrayContaining([...booked, ...concurrent.map((result) => String(result.body.id))]));
    expect(state.confirmedIds).toHaveLength(1 + POOL_MAX * 4); // the warm-up, and not the cut-off one
    expect(service.child.exitCode).toBeNull();
    expect(service.output()).not.toMatch(/already released|unhandled/i);
  });
});
