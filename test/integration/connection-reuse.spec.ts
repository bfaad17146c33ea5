import type { Client } from 'pg';
import { TransactionRunner } from '../../src/database/transaction-runner';
import {
  bookingState,
  bookOverHttp,
  connectClient,
  FreezableProxy,
  type InProcessApp,
  insertMatch,
  locksHeldByOthers,
  rowLockIsFree,
  serviceSessions,
  startInProcessApp,
  waitFor,
} from '../support/faults';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';

/**
 * A connection whose transaction could not be rolled back must be destroyed, never handed to
 * the next request: node-postgres does not look at the transaction state on release, so a
 * reused connection would carry the open transaction and its row locks along.
 *
 * Produced for real: the work fails with an ordinary (non-database) error, and at that moment
 * the network to PostgreSQL freezes, so the ROLLBACK gets no answer and ends in the client's
 * query_timeout, while the server still has the transaction open with the row locked.
 * (The other path, a runner released while TypeORM still flags a transaction as active, has
 * no real trigger that we know of; src/database/transaction-runner.spec.ts covers it with a stub.)
 */
describe('a connection whose transaction could not be rolled back', () => {
  const QUERY_TIMEOUT_MS = 1_500;
  let databaseUrl: string;
  let proxy: FreezableProxy;
  let t: InProcessApp;
  let observer: Client;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    const target = new URL(databaseUrl);
    proxy = await FreezableProxy.start(target.hostname, Number(target.port || 5432));
    t = await startInProcessApp(proxy.route(databaseUrl), {
      DATABASE_POOL_MAX: '1',
      DATABASE_LOCK_TIMEOUT_MS: '500',
      DATABASE_STATEMENT_TIMEOUT_MS: '1000',
      DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      // Long, so that it is not the server's timeout that ends the abandoned transaction.
      DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '60000',
    });
    observer = await connectClient(databaseUrl);
  });
  afterAll(async () => {
    proxy.thaw();
    await observer.end();
    await t.close();
    await proxy.close();
    await dropTestDatabase(databaseUrl);
  });

  it('should be destroyed, so the next request on a pool of one gets a new session that holds no lock and no transaction', async () => {
    const matchId = await insertMatch(observer, 5);
    const runner = t.app.get(TransactionRunner);

    let firstPid = 0;
    const failure = await runner
      .run('rollback-fails', async (queryRunner) => {
        const rows: Array<{ pid: number }> = await queryRunner.query('SELECT pg_backend_pid() AS pid');
        firstPid = rows[0]!.pid;
        await queryRunner.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
        await queryRunner.query('UPDATE matches SET booked_slots = booked_slots + 1 WHERE id = $1', [matchId]);
        proxy.freeze();
        throw new Error('business rule failed');
      })
      .catch((error: unknown) => error);

    // The caller gets its own error; the runner logged the failed rollback and destroyed the connection.
    expect(failure).toMatchObject({ message: 'business rule failed' });
    expect(t.logs()).toMatch(/Rollback of transaction \\?"rollback-fails\\?" failed; its connection will be destroyed/);
    // Meanwhile the server still has that transaction open, holding the row lock.
    const { rows: stillOpen } = await observer.query<{ state: string }>('SELECT state FROM pg_stat_activity WHERE pid = $1', [firstPid]);
    expect(stillOpen).toEqual([{ state: 'idle in transaction' }]);
    expect(await rowLockIsFree(observer, matchId)).toBe(false);

    proxy.thaw();
    // The next transaction on the pool of one: a new session, not inside anyone's transaction.
    const next = await runner.run('next', async (queryRunner) => {
      const rows: Array<{ pid: number; xact_start: Date; now: Date }> = await queryRunner.query(
        `SELECT pg_backend_pid() AS pid, a.xact_start, now() AS now
           FROM pg_stat_activity a WHERE a.pid = pg_backend_pid()`,
      );
      return rows[0]!;
    });
    expect(next.pid).not.toBe(firstPid);
    // Its transaction began with this run (BEGIN), not earlier with the abandoned one.
    expect(next.xact_start.getTime()).toBe(next.now.getTime());

    // The abandoned session ends once its connection is closed: its lock goes with it.
    await waitFor('the abandoned session to end', async () => (await observer.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [firstPid])).rowCount === 0, {
      timeoutMs: 3_000,
    });
    expect(await locksHeldByOthers(observer)).toEqual([]);
    const sessions = await serviceSessions(observer);
    expect(sessions).toEqual([{ pid: next.pid, state: 'idle' }]);

    const booking = await bookOverHttp(t.baseUrl, matchId, 'next-customer', 5_000);
    expect(booking.status).toBe(201);
    // The failed transaction's update was rolled back by the server; the counter matches the bookings.
    expect(await bookingState(observer, matchId)).toEqual({ bookedSlots: 1, confirmedSlots: 1, confirmedIds: [booking.body.id] });
  });
});
