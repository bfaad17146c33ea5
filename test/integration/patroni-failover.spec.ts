import { Client } from 'pg';
import { getStatus, report, sleep, startBookingLoad, waitFor } from '../support/faults';
import { PATRONI_TIMING, type PatroniCluster, startPatroniCluster } from '../support/patroni-cluster';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';

const FAILOVER_BOUND_MS = 30_000;

/**
 * The leader of a Patroni cluster (synchronous_mode, HAProxy routing to /primary) dies under
 * booking load: kill -9 of its PostgreSQL, then of its Patroni. The standby takes over when the
 * leader key expires. No acknowledged booking may be lost, no request may get a 500, readiness
 * goes 503 and back without a restart, and the time to the next booking is measured.
 */
describe('PostgreSQL failover with Patroni', () => {
  let cluster: PatroniCluster;
  let service: ServiceProcess | undefined;

  beforeAll(async () => {
    cluster = await startPatroniCluster();
    const admin = new Client({ connectionString: cluster.url('postgres') });
    await admin.connect();
    await admin.query('CREATE DATABASE booking');
    await admin.end();
    service = await startServiceProcess({
      DATABASE_URL: cluster.url('booking'),
      DATABASE_MIGRATE_ON_START: 'true',
      DATABASE_POOL_MAX: '4',
      DATABASE_POOL_WAIT_TIMEOUT_MS: '1000',
      DATABASE_LOCK_TIMEOUT_MS: '1000',
      DATABASE_STATEMENT_TIMEOUT_MS: '2000',
      DATABASE_QUERY_TIMEOUT_MS: '3000',
      DATABASE_OUTCOME_CHECK_TIMEOUT_MS: '3000',
      HEALTH_CHECK_TIMEOUT_MS: '500',
    });
  }, 120_000);
  afterAll(async () => {
    if (service) await stopServiceProcess(service);
    await cluster?.stop();
  });

  it('should lose no acknowledged booking, answer no 500, and book again within the bound after the leader dies', async () => {
    const servicePid = service!.child.pid;
    const setup = new Client({ connectionString: cluster.url('booking') });
    await setup.connect();
    const { rows } = await setup.query<{ id: string }>(`INSERT INTO matches (title, starts_at, capacity) VALUES ('failover', now() + interval '1 day', 100000) RETURNING id`);
    await setup.end();
    const matchId = rows[0]!.id;

    const load = startBookingLoad(service!.baseUrl, matchId, { clients: 4, prefix: 'failover', timeoutMs: 15_000, pauseAfterFailureMs: 50 });
    const { outcomes } = load;
    await waitFor('bookings to flow', () => outcomes.filter((o) => o.result?.status === 201).length >= 20, { timeoutMs: 10_000 });

    const oldLeader = await cluster.leader();
    expect(oldLeader).toBeDefined();
    const killedAt = performance.now();
    cluster.killNode(oldLeader!);
    const ready = async () => (await getStatus(`${service!.baseUrl}/health/ready`)).status;
    const { elapsedMs: unreadyAfterMs } = await waitFor('readiness 503 without a leader', async () => (await ready()) === 503, { timeoutMs: 10_000, intervalMs: 50 });
    const { elapsedMs: bookedAfterMs } = await waitFor(
      'a booking to succeed on the new leader',
      () => outcomes.some((o) => o.startedAt > killedAt && o.result?.status === 201),
      { timeoutMs: FAILOVER_BOUND_MS + 15_000, intervalMs: 100 },
    );
    await waitFor('readiness 200 again', async () => (await ready()) === 200, { timeoutMs: 10_000, intervalMs: 100 });
    await sleep(500);
    await load.stop();

    const newLeader = await cluster.leader();
    expect(newLeader?.name).not.toBe(oldLeader!.name);
    expect(outcomes.filter((o) => o.failure !== undefined).map((o) => o.failure)).toEqual([]);
    const statuses = outcomes.map((o) => o.result!.status);
    const unexpected = outcomes.filter((o) => o.result!.status !== 201 && o.result!.status !== 503);
    // On failure, the service's own error lines say why.
    const errorLines = unexpected.length > 0 ? service!.output().split('\n').filter((line) => /"level":50/.test(line)).slice(0, 5) : [];
    expect({ unexpected: unexpected.map((o) => o.result!.status), errorLines }).toEqual({ unexpected: [], errorLines: [] });
    for (const outcome of outcomes.filter((o) => o.result?.status === 503)) {
      expect(outcome.result!.retryAfter).toBeDefined();
      expect(['/problems/database-unavailable', '/problems/lock-timeout', '/problems/concurrency-conflict', '/problems/outcome-unknown']).toContain(outcome.result!.body.type);
    }
    // The same process reconnected by itself.
    expect(service!.child.pid).toBe(servicePid);
    expect(service!.child.exitCode).toBeNull();

    // Every 201 has its row on the new leader; a booking without a 201 was named by an outcome-unknown; counters equal sums.
    const observer = new Client({ connectionString: cluster.url('booking') });
    await observer.connect();
    try {
      const { rows: bookings } = await observer.query<{ id: string }>(`SELECT id FROM bookings WHERE match_id = $1 AND status = 'confirmed'`, [matchId]);
      const stored = new Set(bookings.map((row) => row.id));
      const answered = outcomes.filter((o) => o.result?.status === 201).map((o) => String(o.result!.body.id));
      expect(answered.filter((id) => !stored.has(id))).toEqual([]);
      const named = new Set(outcomes.filter((o) => o.result?.body.type === '/problems/outcome-unknown').map((o) => String(o.result!.body.bookingId)));
      expect([...stored].filter((id) => !answered.includes(id) && !named.has(id))).toEqual([]);
      const { rows: counters } = await observer.query<{ booked: number; confirmed: number }>(
        `SELECT booked_slots AS booked, (SELECT COALESCE(SUM(slots), 0)::int FROM bookings WHERE match_id = m.id AND status = 'confirmed') AS confirmed FROM matches m WHERE id = $1`,
        [matchId],
      );
      expect(counters[0]!.booked).toBe(counters[0]!.confirmed);
      expect(bookedAfterMs).toBeLessThan(FAILOVER_BOUND_MS);
      const cutCommits = service!.output().split('\n').filter((line) => line.includes('failed during COMMIT')).length;
      report(
        `Patroni failover (ttl ${PATRONI_TIMING.ttl} s, loop_wait ${PATRONI_TIMING.loopWait} s, retry_timeout ${PATRONI_TIMING.retryTimeout} s): ` +
          `${oldLeader!.name} killed -> readiness 503 after ${Math.round(unreadyAfterMs)} ms, next booking ${(bookedAfterMs / 1000).toFixed(1)} s after the kill on ${newLeader?.name}; ` +
          `${answered.length} × 201 all on the new leader, ${statuses.filter((s) => s === 503).length} × 503 (${named.size} outcome-unknown), ${cutCommits} COMMIT(s) cut off, 0 lost`,
      );
    } finally {
      await observer.end();
    }
  }, 120_000);
});
