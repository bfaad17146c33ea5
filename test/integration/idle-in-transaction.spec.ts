import type { Client } from 'pg';
import request from 'supertest';
import { TransactionRunner } from '../../src/database/transaction-runner';
import { DatabaseUnavailableError } from '../../src/errors/domain-errors';
import { bookingState, connectClient, insertMatch, report, rowLockIsFree, serviceSessions, waitFor } from '../support/faults';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * A transaction that stops talking to the server while it holds a row lock (the code awaits
 * something slow between two queries): idle_in_transaction_session_timeout ends the session,
 * which frees the lock, and the pool must get a working connection back.
 */
describe('a transaction left idle while it holds a row lock', () => {
  const IDLE_IN_TRANSACTION_TIMEOUT_MS = 500;
  let t: TestApp;
  let observer: Client;

  beforeAll(async () => {
    t = await startTestApp({
      DATABASE_POOL_MAX: '1',
      DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: String(IDLE_IN_TRANSACTION_TIMEOUT_MS),
    });
    observer = await connectClient(t.databaseUrl);
  });
  afterAll(async () => {
    await observer.end();
    await t.close();
  });

  it('should be ended by idle_in_transaction_session_timeout, free the lock, fail with DatabaseUnavailableError, and leave the pool of one working', async () => {
    const matchId = await insertMatch(observer, 5);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let idlePid = 0;
      let lockFreedAfterMs = 0;
      const failure = await t.app
        .get(TransactionRunner)
        .run('idles', async (queryRunner) => {
          const rows: Array<{ pid: number }> = await queryRunner.query('SELECT pg_backend_pid() AS pid');
          idlePid = rows[0]!.pid;
          await queryRunner.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
          await queryRunner.query('UPDATE matches SET booked_slots = booked_slots + 1 WHERE id = $1', [matchId]);
          // The "slow work": idle, the lock held, longer than the timeout. Polled, not slept.
          const freed = await waitFor('the server to end the idle transaction and free the row', () => rowLockIsFree(observer, matchId), {
            timeoutMs: IDLE_IN_TRANSACTION_TIMEOUT_MS + 2_000,
          });
          lockFreedAfterMs = freed.elapsedMs;
          await queryRunner.query('UPDATE matches SET booked_slots = booked_slots + 1 WHERE id = $1', [matchId]);
        })
        .catch((error: unknown) => error);

      report(`idle in transaction: lock freed ${(lockFreedAfterMs / 1000).toFixed(2)} s after the last statement (timeout ${IDLE_IN_TRANSACTION_TIMEOUT_MS} ms)`);
      expect(failure).toBeInstanceOf(DatabaseUnavailableError);
      expect(lockFreedAfterMs).toBeLessThan(IDLE_IN_TRANSACTION_TIMEOUT_MS + 1_500);
      const { rows: gone } = await observer.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [idlePid]);
      expect(gone).toEqual([]);

      // The only pooled connection was the one that died: the next transaction gets a new, working one.
      const nextPid = await t.app.get(TransactionRunner).run('next', async (queryRunner) => {
        await queryRunner.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
        const rows: Array<{ pid: number }> = await queryRunner.query('SELECT pg_backend_pid() AS pid');
        return rows[0]!.pid;
      });
      expect(nextPid).not.toBe(idlePid);
      const booking = await request(t.server)
        .post(`/api/v1/matches/${matchId}/bookings`)
        .set('Authorization', `Bearer ${t.token('after-idle')}`)
        .send({ slots: 1 });
      expect(booking.status).toBe(201);

      // The idle transaction's update was rolled back; the counter matches the confirmed bookings.
      const state = await bookingState(observer, matchId);
      expect(state).toEqual({ bookedSlots: 1, confirmedSlots: 1, confirmedIds: [booking.body.id] });
      expect((await serviceSessions(observer)).filter((session) => session.state !== 'idle')).toEqual([]);
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
