import type { Client } from 'pg';
import {
  bookingState,
  bookOverHttp,
  connectClient,
  dropSlowBookingTrigger,
  installSlowBookingTrigger,
  insertMatch,
  report,
  sleepingBookingBackend,
  waitFor,
} from '../support/faults';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';

/**
 * kill -9 of an instance in the middle of a booking transaction that holds a match row lock:
 * nothing on the instance can roll back, so only PostgreSQL can free the lock. The backend is
 * busy (the transaction sleeps in a trigger), so it reads nothing from the socket; it is
 * client_connection_check_interval that makes it notice the vanished client and abort.
 */
describe('an instance killed with SIGKILL while its booking transaction holds the match row lock', () => {
  const CHECK_INTERVAL_MS = 500;
  const LOCK_TIMEOUT_B_MS = 200;
  const TRIGGER_SLEEP_S = 20; // far beyond the bound: only the connection check can end it in time

  let databaseUrl: string;
  let observer: Client;
  let a: ServiceProcess | undefined;
  let b: ServiceProcess | undefined;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    observer = await connectClient(databaseUrl);
  });
  afterAll(async () => {
    if (a) await stopServiceProcess(a);
    if (b) await stopServiceProcess(b);
    await observer.end();
    await dropTestDatabase(databaseUrl);
  });

  it('should free the lock so another instance books the match within the connection check interval', async () => {
    const common = {
      DATABASE_URL: databaseUrl,
      DATABASE_CONNECTION_CHECK_INTERVAL_MS: String(CHECK_INTERVAL_MS),
      DATABASE_TCP_KEEPALIVES_IDLE_S: '1',
      DATABASE_TCP_KEEPALIVES_INTERVAL_S: '1',
      DATABASE_TCP_KEEPALIVES_COUNT: '2',
      DATABASE_TCP_USER_TIMEOUT_MS: '3000',
    };
    [a, b] = await Promise.all([
      // A's statement may sleep in the trigger: its statement_timeout must not be what ends it.
      startServiceProcess({ ...common, DATABASE_STATEMENT_TIMEOUT_MS: '60000', DATABASE_QUERY_TIMEOUT_MS: '61000' }),
      startServiceProcess({ ...common, DATABASE_LOCK_TIMEOUT_MS: String(LOCK_TIMEOUT_B_MS), SHUTDOWN_READINESS_DELAY_MS: '0' }),
    ]);
    const matchId = await insertMatch(observer, 10);
    await installSlowBookingTrigger(observer, 'customer-a', TRIGGER_SLEEP_S);

    const doomed = bookOverHttp(a.baseUrl, matchId, 'customer-a').catch((error: unknown) => error);
    const { value: backendPid } = await waitFor('A\'s booking to sleep in the trigger with the row locked', () => sleepingBookingBackend(observer), {
      timeoutMs: 5_000,
    });
    await expect(bookOverHttp(b.baseUrl, matchId, 'customer-b')).resolves.toMatchObject({ status: 503, body: { type: '/problems/lock-timeout' } });

    a.child.kill('SIGKILL');
    const killedAt = performance.now();
    await a.exited;
    await expect(doomed).resolves.toMatchObject({ message: 'fetch failed' }); // its HTTP connection died with the process

    // B retries the way a client would after 503 + Retry-After, only faster.
    const bound = CHECK_INTERVAL_MS + LOCK_TIMEOUT_B_MS + 2_000;
    const { value: booked } = await waitFor(
      'B to book the match',
      async () => {
        const result = await bookOverHttp(b!.baseUrl, matchId, 'customer-b');
        if (result.status === 201) return result;
        expect(result).toMatchObject({ status: 503, body: { type: '/problems/lock-timeout' } });
        return undefined;
      },
      { timeoutMs: bound, intervalMs: 20 },
    );
    const recoveryMs = performance.now() - killedAt;
    report(
      `kill -9 with the row locked -> another instance booked after ${(recoveryMs / 1000).toFixed(2)} s ` +
        `(client_connection_check_interval ${CHECK_INTERVAL_MS} ms, B lock_timeout ${LOCK_TIMEOUT_B_MS} ms, bound ${bound} ms, trigger sleep ${TRIGGER_SLEEP_S} s)`,
    );
    expect(recoveryMs).toBeLessThan(bound);

    // The dead instance's backend is gone and its transaction rolled back: only B's booking counts.
    const { rows } = await observer.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [backendPid]);
    expect(rows).toEqual([]);
    await dropSlowBookingTrigger(observer);
    const state = await bookingState(observer, matchId);
    expect(state.confirmedIds).toEqual([booked.body.id]);
    expect(state.bookedSlots).toBe(1);
    expect(state.confirmedSlots).toBe(state.bookedSlots);
  });
});
