import request from 'supertest';
import { TransactionRunner } from '../../src/database/transaction-runner';
import { bookOverHttp, connectClient, installSlowBookingTrigger, insertMatch, report, rowLockIsFree, sleepingBookingBackend, waitFor } from '../support/faults';
import { createMatch, lockMatchRow, matchCounters } from '../support/fixtures';
import { type Pgbouncer, startPgbouncer } from '../support/pgbouncer';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';
import { startTestApp, type TestApp } from '../support/test-app';
import { runDatabasePrefix, serverUrl, withServerClient } from '../support/test-database';

const LOCK_TIMEOUT_MS = 1_000;

interface BookingBody {
  id: string;
  slots: number;
}

/**
 * The service behind a real PgBouncer 1.18 in transaction pooling mode (DATABASE_POOLER=
 * transaction): it must connect (no startup parameters PgBouncer refuses), work under
 * concurrency (no named prepared statements), keep every timeout in force per transaction, and
 * run migrations over DATABASE_DIRECT_URL.
 */
describe('behind PgBouncer in transaction pooling mode', () => {
  let pgbouncer: Pgbouncer;
  let t: TestApp;
  beforeAll(async () => {
    // Fewer server connections than the app's pool: transactions share them, as in production.
    pgbouncer = await startPgbouncer(serverUrl(), { poolSize: 4 });
    t = await startTestApp(
      { DATABASE_POOLER: 'transaction', DATABASE_POOL_MAX: '8', DATABASE_LOCK_TIMEOUT_MS: String(LOCK_TIMEOUT_MS), HOLD_SWEEP_INTERVAL_MS: '0' },
      { connectThrough: (url) => pgbouncer.route(url) },
    );
  });
  afterAll(async () => {
    await t?.close();
    await pgbouncer?.stop();
  });

  const as = (customer: string, options?: { admin?: boolean }) => `Bearer ${t.token(customer, options)}`;
  const book = (matchId: string, customer: string, slots: number, key?: string) =>
    request(t.server)
      .post(`/api/v1/matches/${matchId}/bookings`)
      .set('Authorization', as(customer))
      .set(key ? { 'Idempotency-Key': key } : {})
      .send({ slots });

  it('should set every timeout for each transaction, and leave none behind on the shared server connection', async () => {
    const settings = "SELECT current_setting('lock_timeout') AS lock, current_setting('statement_timeout') AS statement, current_setting('idle_in_transaction_session_timeout') AS idle";
    const inTransaction = await t.app.get(TransactionRunner).run('settings', (queryRunner) => queryRunner.query(settings) as Promise<Array<Record<string, string>>>);
    expect(inTransaction).toEqual([{ lock: '1s', statement: '10s', idle: '5s' }]);
    // The next statement outside a transaction may run on the same server connection: back to the server's defaults.
    expect(await t.dataSource.query<Array<Record<string, string>>>(settings)).toEqual([{ lock: '0', statement: '0', idle: '0' }]);
  });

  it('should never overbook while 300 concurrent bookings of 1 to 3 slots race for 200 slots', async () => {
    const matchId = await createMatch(t, 200);
    const responses = await Promise.all(Array.from({ length: 300 }, (_, i) => book(matchId, `race-${i}`, 1 + (i % 3))));

    expect(responses.filter((r) => r.status !== 201 && r.status !== 409).map((r) => [r.status, r.body as unknown])).toEqual([]);
    const confirmed = responses.filter((r) => r.status === 201).map((r) => r.body as BookingBody);
    const counters = await matchCounters(t, matchId);
    expect(counters.bookedSlots).toBe(counters.confirmedSlots);
    expect(counters.bookedSlots).toBe(confirmed.reduce((sum, b) => sum + b.slots, 0));
    expect(counters.bookedSlots).toBeGreaterThan(197);
    expect(counters.bookedSlots).toBeLessThanOrEqual(200);
  });

  it('should sell out exactly: 400 bookings of 1 slot for 100 slots give 100 × 201 and 300 × 409', async () => {
    const matchId = await createMatch(t, 100);
    const responses = await Promise.all(Array.from({ length: 400 }, (_, i) => book(matchId, `sellout-${i}`, 1)));

    expect(responses.filter((r) => r.status === 201)).toHaveLength(100);
    expect(responses.filter((r) => r.status === 409)).toHaveLength(300);
    expect(await matchCounters(t, matchId)).toEqual({ capacity: 100, bookedSlots: 100, confirmedSlots: 100, confirmedBookings: 100 });
  });

  it('should replay each keyed booking exactly, with concurrent first attempts', async () => {
    const matchId = await createMatch(t, 50);
    const first = await Promise.all(Array.from({ length: 40 }, (_, i) => book(matchId, `keyed-${i}`, 1, `key-${i}`)));
    const again = await Promise.all(Array.from({ length: 40 }, (_, i) => book(matchId, `keyed-${i}`, 1, `key-${i}`)));

    expect(first.map((r) => r.status)).toEqual(first.map(() => 201));
    again.forEach((response, i) => {
      expect(response.status).toBe(201);
      expect(response.headers['idempotent-replayed']).toBe('true');
      expect(response.body).toEqual(first[i]!.body);
    });
    expect((await matchCounters(t, matchId)).confirmedBookings).toBe(40);
  });

  it('should keep booked and held counters equal to their rows through a race of holds, confirmations, releases and bookings', async () => {
    const matchId = await createMatch(t, 30);
    const statuses = await Promise.all(
      Array.from({ length: 24 }, async (_, i) => {
        const customer = `holder-${i}`;
        const held = await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', as(customer)).send({ slots: 1 + (i % 2) });
        if (held.status !== 201) return [held.status];
        const id = (held.body as { id: string }).id;
        const next =
          i % 3 === 0
            ? await request(t.server).delete(`/api/v1/holds/${id}`).set('Authorization', as(customer))
            : await request(t.server).post(`/api/v1/holds/${id}/confirm`).set('Authorization', as(customer));
        const booked = await book(matchId, customer, 1);
        return [held.status, next.status, booked.status];
      }),
    );

    for (const status of statuses.flat()) expect([201, 204, 409]).toContain(status);
    const [row] = await t.dataSource.query<Array<{ booked: number; held: number; confirmed: number; active: number }>>(
      `SELECT booked_slots AS booked, held_slots AS held,
              (SELECT COALESCE(SUM(slots), 0)::int FROM bookings WHERE match_id = m.id AND status = 'confirmed') AS confirmed,
              (SELECT COALESCE(SUM(slots), 0)::int FROM holds WHERE match_id = m.id AND status = 'active') AS active
         FROM matches m WHERE id = $1`,
      [matchId],
    );
    expect(row!.booked).toBe(row!.confirmed);
    expect(row!.held).toBe(row!.active);
    expect(row!.booked + row!.held).toBeLessThanOrEqual(30);
  });

  it('should answer 503 lock-timeout within the lock timeout (+1 s) while the match row is locked elsewhere', async () => {
    const matchId = await createMatch(t, 5);
    const holder = await lockMatchRow(t.databaseUrl, matchId);
    try {
      const started = performance.now();
      const response = await book(matchId, 'waiter', 1);
      const elapsedMs = performance.now() - started;

      expect(response.status).toBe(503);
      expect((response.body as { type: string }).type).toBe('/problems/lock-timeout');
      expect(elapsedMs).toBeLessThan(LOCK_TIMEOUT_MS + 1_000);
      report(`PgBouncer: a booking behind a locked row answered 503 lock-timeout after ${Math.round(elapsedMs)} ms (lock_timeout ${LOCK_TIMEOUT_MS} ms)`);
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
  });
});

/** Service processes behind PgBouncer: migrations over the direct URL, and a killed instance's row lock. */
describe('service processes behind PgBouncer', () => {
  const TRIGGER_SLEEP_S = 20;
  const CHECK_INTERVAL_MS = 500;
  let pgbouncer: Pgbouncer;
  let service: ServiceProcess | undefined;
  let database: string;
  let directUrl: string;

  beforeAll(async () => {
    pgbouncer = await startPgbouncer(serverUrl(), { poolSize: 4 });
    // An empty database: the service migrates it at startup, over DATABASE_DIRECT_URL.
    database = `${runDatabasePrefix()}pgbouncer`;
    await withServerClient((client) => client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`));
    const url = new URL(serverUrl());
    url.pathname = `/${database}`;
    directUrl = url.toString();
  });
  afterAll(async () => {
    if (service) await stopServiceProcess(service);
    await pgbouncer?.stop();
    await withServerClient((client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(database)} WITH (FORCE)`));
  });

  it('should migrate an empty database at startup over the direct URL, and free the row lock of a killed instance within a bound', async () => {
    service = await startServiceProcess({
      DATABASE_URL: pgbouncer.route(directUrl),
      DATABASE_DIRECT_URL: directUrl,
      DATABASE_POOLER: 'transaction',
      DATABASE_MIGRATE_ON_START: 'true',
      DATABASE_CONNECTION_CHECK_INTERVAL_MS: String(CHECK_INTERVAL_MS),
      DATABASE_STATEMENT_TIMEOUT_MS: '60000',
      DATABASE_QUERY_TIMEOUT_MS: '65000',
    });
    const observer = await connectClient(directUrl);
    try {
      const matchId = await insertMatch(observer, 10);
      await installSlowBookingTrigger(observer, 'stuck', TRIGGER_SLEEP_S);
      await expect(bookOverHttp(service.baseUrl, matchId, 'warm-up')).resolves.toMatchObject({ status: 201 });

      void bookOverHttp(service.baseUrl, matchId, 'stuck', 30_000).catch(() => undefined);
      await waitFor('the booking to sleep in the trigger with the row locked', () => sleepingBookingBackend(observer), { timeoutMs: 5_000, intervalMs: 10 });
      const killedAt = performance.now();
      service.child.kill('SIGKILL');
      await service.exited;
      const { elapsedMs } = await waitFor('the row lock to be freed', () => rowLockIsFree(observer, matchId), { timeoutMs: 5_000, intervalMs: 20 });

      const bound = CHECK_INTERVAL_MS + 1_500;
      expect(elapsedMs).toBeLessThan(bound);
      expect(performance.now() - killedAt).toBeLessThan(TRIGGER_SLEEP_S * 1000);
      const { rows } = await observer.query<{ n: string }>(`SELECT count(*) AS n FROM bookings WHERE customer_id = 'stuck'`);
      expect(rows[0]!.n).toBe('0');
      report(`PgBouncer: kill -9 of an instance mid-transaction -> row lock freed after ${(elapsedMs / 1000).toFixed(2)} s (client_connection_check_interval ${CHECK_INTERVAL_MS} ms, bound ${bound} ms)`);
    } finally {
      await observer.end();
    }
  });
});
