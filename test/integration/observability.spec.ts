import { Client } from 'pg';
import request from 'supertest';
import type { DatabaseActivity } from '../../src/admin/db-activity.repository';
import { TransactionRunner } from '../../src/database/transaction-runner';
import { Metrics } from '../../src/observability/metrics';
import { ReconciliationJob } from '../../src/inventory/reconciliation.job';
import { createMatch } from '../support/fixtures';
import { freePort } from '../support/ports';
import { startTestApp, type TestApp } from '../support/test-app';

/** Each event is made to happen for real, then its metric (and log line) is checked. */
describe('observability', () => {
  let t: TestApp;
  let holder: Client;
  const logLines: string[] = [];
  const logs = () => logLines.join('');

  beforeAll(async () => {
    t = await startTestApp(
      { DATABASE_SLOW_TRANSACTION_MS: '200', DATABASE_LOCK_TIMEOUT_MS: '300', RECONCILE_INTERVAL_MS: '0' },
      { logDestination: { write: (line: string) => logLines.push(line) } },
    );
    holder = new Client({ connectionString: t.databaseUrl });
    await holder.connect();
  });
  afterAll(async () => {
    await holder.end();
    await t.close();
  });

  /** Sum of a metric's samples whose labels include `labels` (for histograms: the _count samples). */
  async function metricValue(name: string, labels: Record<string, string> = {}): Promise<number> {
    const metric = t.app.get(Metrics).registry.getSingleMetric(name);
    if (!metric) throw new Error(`no metric ${name}`);
    const { type, values } = await metric.get();
    return values
      .filter((sample) => String(type) !== 'histogram' || (sample as { metricName?: string }).metricName === `${name}_count`)
      .filter((sample) => Object.entries(labels).every(([key, value]) => sample.labels[key] === value))
      .reduce((sum, sample) => sum + sample.value, 0);
  }

  const book = (matchId: string, headers: Record<string, string> = {}) =>
    request(t.server)
      .post(`/api/v1/matches/${matchId}/bookings`)
      .set('Authorization', `Bearer ${t.token('alice')}`)
      .set(headers)
      .send({ slots: 1 });

  async function holdMatchLock(matchId: string): Promise<void> {
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
  }

  it('should serve the metrics in Prometheus text format, with pool gauges and process metrics', async () => {
    const response = await request(t.server).get('/metrics').expect(200);
    expect(response.headers['content-type']).toContain('text/plain');
    for (const name of ['http_request_duration_seconds', 'db_pool_connections_total', 'db_pool_waiting_clients', 'process_resident_memory_bytes', 'booking_outcomes_total']) {
      expect(response.text).toContain(name);
    }
  });

  it('should count a confirmed booking and time its request by route template', async () => {
    const matchId = await createMatch(t, 5);
    const confirmed = await metricValue('booking_outcomes_total', { outcome: 'confirmed' });
    const timed = await metricValue('http_request_duration_seconds', { route: '/api/v1/matches/:id/bookings', status: '201' });

    await book(matchId).expect(201);

    expect(await metricValue('booking_outcomes_total', { outcome: 'confirmed' })).toBe(confirmed + 1);
    expect(await metricValue('http_request_duration_seconds', { route: '/api/v1/matches/:id/bookings', status: '201' })).toBe(timed + 1);
  });

  it('should label requests no route takes with a fixed few routes, whatever their path and case', async () => {
    const before = {
      api: await metricValue('http_request_duration_seconds', { route: '/api/v1*path', status: '404' }),
      unmatched: await metricValue('http_request_duration_seconds', { route: 'unmatched', status: '404' }),
    };

    await request(t.server).get('/api/v1/no-such-thing').set('Authorization', `Bearer ${t.token('alice')}`).expect(404);
    await request(t.server).get('/API/V1/No-Such-Thing').set('Authorization', `Bearer ${t.token('alice')}`).expect(404);
    await request(t.server).get('/elsewhere/entirely').expect(404);

    expect(await metricValue('http_request_duration_seconds', { route: '/api/v1*path', status: '404' })).toBe(before.api + 2);
    expect(await metricValue('http_request_duration_seconds', { route: 'unmatched', status: '404' })).toBe(before.unmatched + 1);
  });

  it('should count a forced lock timeout as a booking outcome and record the lock wait', async () => {
    const matchId = await createMatch(t, 5);
    const timeouts = await metricValue('booking_outcomes_total', { outcome: 'lock_timeout' });
    const lockWaits = await metricValue('db_row_lock_wait_seconds', { transaction: 'book-slots' });
    await holdMatchLock(matchId);
    try {
      await book(matchId).expect(503);
    } finally {
      await holder.query('ROLLBACK');
    }
    expect(await metricValue('booking_outcomes_total', { outcome: 'lock_timeout' })).toBe(timeouts + 1);
    expect(await metricValue('db_row_lock_wait_seconds', { transaction: 'book-slots' })).toBe(lockWaits + 1);
  });

  it('should count a QueryRunner release failure, log it, and still answer the booking', async () => {
    const matchId = await createMatch(t, 5);
    const failures = await metricValue('db_query_runner_release_failures_total', { transaction: 'book-slots' });
    const createQueryRunner = t.dataSource.createQueryRunner.bind(t.dataSource);
    jest.spyOn(t.dataSource, 'createQueryRunner').mockImplementationOnce((...args) => {
      const queryRunner = createQueryRunner(...args);
      const release = queryRunner.release.bind(queryRunner);
      queryRunner.release = async () => {
        await release();
        throw new Error('release failed on purpose');
      };
      return queryRunner;
    });

    await book(matchId).expect(201);

    expect(await metricValue('db_query_runner_release_failures_total', { transaction: 'book-slots' })).toBe(failures + 1);
    expect(logs()).toContain('Releasing the connection of transaction \\"book-slots\\" failed');
  });

  it('should retry a real deadlock and count the retry', async () => {
    const [first, second] = [await createMatch(t, 5), await createMatch(t, 5)];
    const retries = await metricValue('db_transaction_retries_total', { reason: 'deadlock' });
    const runner = t.app.get(TransactionRunner);
    let arrived = 0;
    let release: () => void = () => undefined;
    const bothHoldTheirFirstLock = new Promise<void>((resolve) => (release = resolve));
    const lockInOrder = (name: string, ids: [string, string]) =>
      runner.run(name, async (queryRunner) => {
        // Wait longer than PostgreSQL's deadlock_timeout (1 s), so the deadlock is detected first.
        await queryRunner.query('SET LOCAL lock_timeout = 5000');
        await queryRunner.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [ids[0]]);
        if (++arrived === 2) release();
        await bothHoldTheirFirstLock;
        await queryRunner.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [ids[1]]);
        return name;
      });

    await expect(Promise.all([lockInOrder('deadlock-a', [first, second]), lockInOrder('deadlock-b', [second, first])])).resolves.toEqual([
      'deadlock-a',
      'deadlock-b',
    ]);
    expect(await metricValue('db_transaction_retries_total', { reason: 'deadlock' })).toBe(retries + 1);
  });

  it('should count and log a slow transaction, with the request id on the log line', async () => {
    const matchId = await createMatch(t, 5);
    const slow = await metricValue('db_slow_transactions_total', { transaction: 'book-slots' });
    const linesBefore = logLines.length;
    await holdMatchLock(matchId);
    const booking = book(matchId, { 'X-Request-Id': 'slow-booking-1' }).then((response) => response.status);
    await new Promise((resolve) => setTimeout(resolve, 250)); // longer than DATABASE_SLOW_TRANSACTION_MS
    await holder.query('ROLLBACK');

    await expect(booking).resolves.toBe(201);
    expect(await metricValue('db_slow_transactions_total', { transaction: 'book-slots' })).toBe(slow + 1);
    const warning = logLines.slice(linesBefore).find((line) => line.includes('Slow transaction \\"book-slots\\"'));
    expect(warning).toBeDefined();
    expect(warning).toContain('slow-booking-1');
  });

  it('should export and log counter drift planted directly in the database, and clear it once fixed', async () => {
    const matchId = await createMatch(t, 5);
    await book(matchId).expect(201);
    await t.dataSource.query('UPDATE matches SET booked_slots = 3 WHERE id = $1', [matchId]);

    const drifted = await t.app.get(ReconciliationJob).runOnce();

    expect(drifted).toEqual({
      ran: true,
      mismatches: [{ matchId, bookedSlots: 3, expectedSlots: 1, heldSlots: 0, expectedHeldSlots: 0, waitingEntries: 0, expectedWaitingEntries: 0 }],
      offerMismatches: [],
    });
    expect(await metricValue('booking_counter_drift_matches')).toBe(1);
    expect(await metricValue('booking_counter_drift_slots')).toBe(2);
    expect(logs()).toContain(`Counter drift on match ${matchId}`);

    await t.dataSource.query('UPDATE matches SET booked_slots = 1 WHERE id = $1', [matchId]);
    await t.app.get(ReconciliationJob).runOnce();
    expect(await metricValue('booking_counter_drift_matches')).toBe(0);
  });

  it('should let only one instance reconcile at a time', async () => {
    await holder.query('BEGIN');
    await holder.query('SELECT pg_advisory_xact_lock(7317002)');
    try {
      await expect(t.app.get(ReconciliationJob).runOnce()).resolves.toEqual({ ran: false, mismatches: [], offerMismatches: [] });
    } finally {
      await holder.query('ROLLBACK');
    }
  });

  it('should echo X-Request-Id, generate one when absent, and never log the bearer token', async () => {
    const token = t.token('alice');
    const echoed = await request(t.server).get('/api/v1/matches').set('Authorization', `Bearer ${token}`).set('X-Request-Id', 'trace-abc-123');
    const generated = await request(t.server).get('/api/v1/matches').set('Authorization', `Bearer ${token}`);
    const failed = await request(t.server).get('/api/v1/matches/not-a-uuid').set('Authorization', `Bearer ${token}`).set('X-Request-Id', 'trace-bad-1');

    expect(echoed.headers['x-request-id']).toBe('trace-abc-123');
    expect(generated.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(failed.body).toMatchObject({ requestId: 'trace-bad-1' });
    const accessLine = logLines.find((line) => line.includes('trace-abc-123'));
    expect(accessLine).toBeDefined();
    expect(JSON.parse(accessLine!)).toMatchObject({ req: { id: 'trace-abc-123', method: 'GET' }, res: { statusCode: 200 } });
    expect(logs()).not.toContain(token);
    expect(logs()).not.toContain(t.config.auth.jwtSecret);
  });

  it('should not write health checks or metric scrapes to the access log', async () => {
    await request(t.server).get('/health/live').set('X-Request-Id', 'health-probe-1').expect(200);
    await request(t.server).get('/metrics').set('X-Request-Id', 'metrics-scrape-1').expect(200);
    expect(logs()).not.toContain('health-probe-1');
    expect(logs()).not.toContain('metrics-scrape-1');
  });

  it('should show long transactions, sessions idle in transaction and who blocks whom to admins only', async () => {
    const matchId = await createMatch(t, 5);
    await holdMatchLock(matchId);
    const [{ pid: holderPid }] = (await holder.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows as [{ pid: number }];
    const waiting = book(matchId).then((response) => response.status);
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      const admin = t.token('root', { admin: true });
      const response = await request(t.server).get('/api/v1/admin/db/activity?longerThanMs=0').set('Authorization', `Bearer ${admin}`).expect(200);

      const activity = response.body as DatabaseActivity;
      expect(activity.idleInTransaction.map((session) => session.pid)).toContain(holderPid);
      expect(activity.longRunningTransactions.map((session) => session.pid)).toContain(holderPid);
      expect(response.body.blocking).toEqual(
        expect.arrayContaining([expect.objectContaining({ blockingPid: holderPid, blockedQuery: expect.stringContaining('FOR UPDATE') })]),
      );
      expect(response.body.connections.idleInTransaction).toBeGreaterThanOrEqual(1);
      await request(t.server).get('/api/v1/admin/db/activity').set('Authorization', `Bearer ${t.token('alice')}`).expect(403);
    } finally {
      await holder.query('ROLLBACK');
      await waiting;
    }
  });

  describe('protection', () => {
    it('should require METRICS_TOKEN on /metrics when it is set', async () => {
      const guarded = await startTestApp({ METRICS_TOKEN: 'scrape-token-0123456789' });
      try {
        await request(guarded.server).get('/metrics').expect(401);
        await request(guarded.server).get('/metrics').set('Authorization', 'Bearer wrong-token-0123456789').expect(401);
        await request(guarded.server).get('/metrics').set('Authorization', 'Bearer scrape-token-0123456789').expect(200);
      } finally {
        await guarded.close();
      }
    });

    it('should serve /metrics only on METRICS_PORT when it is set', async () => {
      const port = await freePort();
      const separate = await startTestApp({ METRICS_PORT: String(port) });
      try {
        await request(separate.server).get('/metrics').expect(404);
        const scrape = await fetch(`http://127.0.0.1:${port}/metrics`);
        expect(scrape.status).toBe(200);
        expect(await scrape.text()).toContain('booking_outcomes_total');
      } finally {
        await separate.close();
      }
    });
  });
});
