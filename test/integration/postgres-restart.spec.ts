import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Client } from 'pg';
import { loadConfig } from '../../src/config/app-config';
import { runPendingMigrations } from '../../src/database/database-setup';
import { startEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { bookingState, connectClient, getStatus, insertMatch, report, sleep, startBookingLoad, waitFor } from '../support/faults';
import { freePort } from '../support/ports';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';

const quiet = { log: () => undefined };

/**
 * PostgreSQL restarted (pg_ctl stop -m fast, then start) while bookings keep coming. It is a
 * dedicated server in a temporary directory: the shared one serves the other test files.
 */
describe('PostgreSQL restarted under load', () => {
  const QUERY_TIMEOUT_MS = 3_000;
  const POOL_WAIT_TIMEOUT_MS = 1_000;
  const REQUEST_BOUND_MS = QUERY_TIMEOUT_MS + POOL_WAIT_TIMEOUT_MS + 2_000;
  let dataDir: string;
  let port: number;
  let url: string;
  let service: ServiceProcess | undefined;
  let observer: Client | undefined;

  const startServer = async (): Promise<void> => {
    const server = await startEmbeddedPostgres({ dataDir, port, database: 'booking' }, quiet);
    url = server.url;
  };

  beforeAll(async () => {
    dataDir = await mkdtemp(path.join(os.tmpdir(), 'match-booking-restart-pg-'));
    port = await freePort();
    await startServer();
    await runPendingMigrations(loadConfig({ NODE_ENV: 'test', DATABASE_URL: url }), url, quiet);
  });
  afterAll(async () => {
    if (service) await stopServiceProcess(service);
    await observer?.end().catch(() => undefined);
    await stopEmbeddedPostgres(dataDir);
    await rm(dataDir, { recursive: true, force: true });
  });

  it('should answer in-flight and new requests 503 (no 500, no hang), go unready and back, reconnect by itself, and lose no committed booking', async () => {
    service = await startServiceProcess({
      DATABASE_URL: url,
      DATABASE_POOL_MAX: '4',
      DATABASE_POOL_WAIT_TIMEOUT_MS: String(POOL_WAIT_TIMEOUT_MS),
      DATABASE_LOCK_TIMEOUT_MS: '1000',
      DATABASE_STATEMENT_TIMEOUT_MS: '2000',
      DATABASE_QUERY_TIMEOUT_MS: String(QUERY_TIMEOUT_MS),
      HEALTH_CHECK_TIMEOUT_MS: '500',
      DATABASE_OUTCOME_CHECK_TIMEOUT_MS: '2000',
    });
    const servicePid = service.child.pid;
    const setup = await connectClient(url);
    const matchId = await insertMatch(setup, 100_000);
    // Every booking transaction lasts a little while holding the row lock, so some are in flight at the stop.
    await setup.query(`
      CREATE FUNCTION fault_test_slow_booking() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN PERFORM pg_sleep(0.03); RETURN NEW; END $$`);
    await setup.query(`CREATE TRIGGER fault_test_slow_booking BEFORE INSERT ON bookings FOR EACH ROW EXECUTE FUNCTION fault_test_slow_booking()`);
    await setup.end();

    const load = startBookingLoad(service.baseUrl, matchId, { clients: 6, prefix: 'customer', timeoutMs: REQUEST_BOUND_MS, pauseAfterFailureMs: 20 });
    const { outcomes } = load;
    const ready = async (): Promise<number> => (await getStatus(`${service!.baseUrl}/health/ready`)).status;

    await waitFor('bookings to flow', () => outcomes.filter((o) => o.result?.status === 201).length >= 10, { timeoutMs: 5_000 });
    const stoppedAt = performance.now();
    await stopEmbeddedPostgres(dataDir);
    const { elapsedMs: unreadyAfterMs } = await waitFor('readiness 503 with the database down', async () => (await ready()) === 503, {
      timeoutMs: 3_000,
    });
    await waitFor('bookings to fail while the database is down', () => outcomes.some((o) => o.startedAt > stoppedAt + unreadyAfterMs && o.result?.status === 503), {
      timeoutMs: 3_000,
    });

    const restartedAt = performance.now();
    await startServer();
    const { elapsedMs: readyAfterMs } = await waitFor('readiness 200 after the restart', async () => (await ready()) === 200, { timeoutMs: 10_000 });
    const { elapsedMs: bookingAfterMs } = await waitFor(
      'a booking to succeed after the restart',
      () => outcomes.some((o) => o.startedAt > restartedAt && o.result?.status === 201),
      { timeoutMs: 10_000 },
    );
    await sleep(300);
    await load.stop();

    const inFlightAtStop = outcomes.filter((o) => o.startedAt < stoppedAt && o.result && o.startedAt + o.result.elapsedMs > stoppedAt);
    const statuses = outcomes.map((o) => o.result?.status ?? o.failure);
    const count = (status: number) => statuses.filter((s) => s === status).length;
    report(
      `PostgreSQL restart: ${outcomes.length} requests (${count(201)} x 201, ${count(503)} x 503), ${inFlightAtStop.length} in flight at the stop ` +
        `(${inFlightAtStop.map((o) => o.result!.status).join(',')}); readiness 503 after ${Math.round(unreadyAfterMs)} ms, ` +
        `200 ${Math.round(readyAfterMs)} ms after the restart; first booking ${Math.round(bookingAfterMs)} ms after the restart`,
    );

    // Never a hang, never a 500, never a dropped connection: 201 or a clean 503 problem.
    expect(outcomes.filter((o) => o.failure !== undefined).map((o) => o.failure)).toEqual([]);
    expect([...new Set(statuses)].sort()).toEqual([201, 503]);
    for (const { result } of outcomes.filter((o) => o.result?.status === 503)) {
      expect(result).toMatchObject({ retryAfter: expect.any(String), contentType: expect.stringContaining('application/problem+json'), body: { status: 503 } });
      expect(['/problems/database-unavailable', '/problems/lock-timeout', '/problems/concurrency-conflict', '/problems/outcome-unknown']).toContain(
        result!.body.type,
      );
      expect(JSON.stringify(result!.body)).not.toMatch(/\.js:\d+|ECONNREFUSED|terminating connection/);
      expect(result!.elapsedMs).toBeLessThan(REQUEST_BOUND_MS);
    }
    expect(inFlightAtStop.length).toBeGreaterThan(0);
    expect(inFlightAtStop.every((o) => o.result!.status === 201 || o.result!.status === 503)).toBe(true);

    // The same process reconnected by itself.
    expect(service.child.pid).toBe(servicePid);
    expect(service.child.exitCode).toBeNull();

    // No committed booking lost: every 201 has its row, and the counter equals the confirmed slots.
    observer = await connectClient(url);
    const state = await bookingState(observer, matchId);
    const answered201 = outcomes.filter((o) => o.result?.status === 201).map((o) => String(o.result!.body.id));
    expect(state.confirmedIds).toEqual(expect.arrayContaining(answered201));
    expect(state.bookedSlots).toBe(state.confirmedSlots);
    // A booking whose COMMIT answer was lost to the shutdown was looked up: it exists only if its
    // client got a 201, or an outcome-unknown that names it; never a plain 503 that invites a blind retry.
    const namedUnknown = outcomes.filter((o) => o.result?.body.type === '/problems/outcome-unknown').map((o) => String(o.result!.body.bookingId));
    expect(state.confirmedIds.filter((id) => !answered201.includes(id) && !namedUnknown.includes(id))).toEqual([]);
    const resolved = (found: string) => service!.output().split('\n').filter((line) => line.includes(`whose COMMIT outcome was unknown has ${found}`)).length;
    report(
      `PostgreSQL restart: ${resolved('committed')} COMMIT(s) cut off and found committed (answered 201), ${resolved('rolled back')} found rolled back (plain 503), ` +
        `${namedUnknown.length} answered outcome-unknown; ${state.confirmedIds.length - answered201.length} committed booking(s) without a 201`,
    );
  });
});
