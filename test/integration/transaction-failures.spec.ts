import { Client } from 'pg';
import request from 'supertest';
import { TransactionRunner } from '../../src/database/transaction-runner';
import { DatabaseUnavailableError } from '../../src/errors/domain-errors';
import { createMatch, matchCounters } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/test-app';

/** Failures produced for real against PostgreSQL: a lock that is not released, a backend that dies. */
describe('transaction failures', () => {
  let t: TestApp;
  let lockHolder: Client;
  beforeAll(async () => {
    t = await startTestApp({ DATABASE_LOCK_TIMEOUT_MS: '300', DATABASE_POOL_MAX: '1' });
    lockHolder = new Client({ connectionString: t.databaseUrl });
    await lockHolder.connect();
  });
  afterAll(async () => {
    await lockHolder.end();
    await t.close();
  });

  const book = (matchId: string) =>
    request(t.server)
      .post(`/api/v1/matches/${matchId}/bookings`)
      .set('Authorization', `Bearer ${t.token('alice')}`)
      .send({ slots: 1 });

  it('should answer 503 with Retry-After when the match row stays locked past lock_timeout, and book once it is free', async () => {
    const matchId = await createMatch(t, 5);
    await lockHolder.query('BEGIN');
    await lockHolder.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
    try {
      const started = Date.now();
      const response = await book(matchId);
      const waited = Date.now() - started;

      expect(response.status).toBe(503);
      expect(response.headers['retry-after']).toBe('1');
      expect(response.headers['content-type']).toContain('application/problem+json');
      expect(response.body).toMatchObject({ type: '/problems/lock-timeout', status: 503 });
      expect(waited).toBeGreaterThanOrEqual(300);
    } finally {
      await lockHolder.query('ROLLBACK');
    }
    await book(matchId).expect(201);
    expect(await matchCounters(t, matchId)).toMatchObject({ bookedSlots: 1, confirmedSlots: 1 });
  });

  it('should fail cleanly when its backend is terminated mid-transaction, and serve the next request on a new connection', async () => {
    const matchId = await createMatch(t, 5);
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      let doomedPid = 0;
      const failure = await t.app
        .get(TransactionRunner)
        .run('doomed', async (queryRunner) => {
          const rows: Array<{ pid: number }> = await queryRunner.query('SELECT pg_backend_pid() AS pid');
          doomedPid = rows[0]!.pid;
          await queryRunner.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
          await lockHolder.query('SELECT pg_terminate_backend($1)', [doomedPid]);
          await queryRunner.query(`UPDATE matches SET booked_slots = booked_slots + 1 WHERE id = $1`, [matchId]);
        })
        .catch((error: unknown) => error);

      expect(failure).toBeInstanceOf(DatabaseUnavailableError);
      // The pool holds one connection: the next request must get a new, healthy one.
      await book(matchId).expect(201);
      const [{ pid }] = await t.dataSource.query<[{ pid: number }]>('SELECT pg_backend_pid() AS pid');
      expect(pid).not.toBe(doomedPid);
      expect(await matchCounters(t, matchId)).toMatchObject({ bookedSlots: 1, confirmedSlots: 1 });
      await new Promise((resolve) => setImmediate(resolve));
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
  });
});
