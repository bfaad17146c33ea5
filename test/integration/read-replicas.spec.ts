import { DEVELOPMENT_JWT_SECRET, loadConfig } from '../../src/config/app-config';
import { runPendingMigrations } from '../../src/database/database-setup';
import { Metrics } from '../../src/observability/metrics';
import { signAccessToken } from '../../src/auth/jwt';
import { type InProcessApp, report, startInProcessApp, waitFor } from '../support/faults';
import { GENEROUS_RATE_LIMITS } from '../support/rate-limits';
import { type ReplicaCluster, startReplicaCluster } from '../support/replica-cluster';

const MAX_LAG_MS = 1_500;

/**
 * Match reads go to a real streaming replica made by the test (initdb, pg_basebackup -R) while
 * its replay lag is within DATABASE_READ_MAX_LAG_MS, and to the primary otherwise: a paused
 * replay shows stale-but-bounded answers, then fresh ones from the primary; a killed replica
 * costs no request; a customer's own bookings always come from the primary.
 */
describe('reads from a streaming replica', () => {
  let cluster: ReplicaCluster;
  let service: InProcessApp;

  beforeAll(async () => {
    cluster = await startReplicaCluster('booking');
    const quiet = { log: () => undefined };
    await runPendingMigrations(loadConfig({ NODE_ENV: 'test', DATABASE_URL: cluster.primaryUrl }), cluster.primaryUrl, quiet);
    service = await startInProcessApp(cluster.primaryUrl, {
      ...GENEROUS_RATE_LIMITS,
      DATABASE_READ_URLS: cluster.replicaUrl,
      DATABASE_READ_MAX_LAG_MS: String(MAX_LAG_MS),
      DATABASE_READ_LAG_CHECK_INTERVAL_MS: '100',
      HOLD_SWEEP_INTERVAL_MS: '0',
      RECONCILE_INTERVAL_MS: '0',
    });
  });
  afterAll(async () => {
    await service?.close();
    await cluster?.stop();
  });

  const call = async (method: string, path: string, body?: unknown, admin = false): Promise<{ status: number; body: Record<string, unknown> }> => {
    const token = signAccessToken({ sub: admin ? 'admin' : 'reader', admin }, DEVELOPMENT_JWT_SECRET, 60);
    const response = await fetch(`${service.baseUrl}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const availableSlots = async (matchId: string) => (await call('GET', `/matches/${matchId}`)).body.availableSlots;
  const servedBy = async (where: 'replica' | 'primary') =>
    (await service.app.get(Metrics).reads.get()).values.find((value) => value.labels.served_by === where)?.value ?? 0;

  it('should serve match reads from the replica, stale but bounded while its replay is paused, then from the primary', async () => {
    const match = await call('POST', '/matches', { title: 'Replicated', startsAt: '2027-01-01T18:00:00Z', capacity: 10 }, true);
    const matchId = String(match.body.id);
    expect((await call('POST', `/matches/${matchId}/bookings`, { slots: 1 })).status).toBe(201);
    await waitFor('the replica to serve the first booking', async () => (await availableSlots(matchId)) === 9, { timeoutMs: 10_000, intervalMs: 50 });
    const fromReplica = await servedBy('replica');

    await cluster.onReplica('SELECT pg_wal_replay_pause()');
    const booked = await call('POST', `/matches/${matchId}/bookings`, { slots: 1 });
    expect(booked.status).toBe(201);
    const pausedAt = performance.now();

    // Stale, from the replica: the second booking is not there yet.
    expect(await availableSlots(matchId)).toBe(9);
    expect(await servedBy('replica')).toBeGreaterThan(fromReplica);
    // A customer's own booking, and a match created a moment ago, come from the primary at once.
    expect((await call('GET', `/bookings/${String(booked.body.id)}`)).status).toBe(200);
    const created = await call('POST', '/matches', { title: 'Just made', startsAt: '2027-01-02T18:00:00Z', capacity: 5 }, true);
    expect((await call('GET', `/matches/${String(created.body.id)}`)).status).toBe(200);

    // Once the lag passes the bound, the primary answers: fresh.
    const { elapsedMs } = await waitFor('reads to fall back to the primary', async () => (await availableSlots(matchId)) === 8, { timeoutMs: MAX_LAG_MS + 3_000, intervalMs: 50 }).catch(async (error: unknown) => {
      throw new Error(`${String(error)}; lag: ${JSON.stringify((await service.app.get(Metrics).replicaLag.get()).values)}`);
    });
    const staleForMs = performance.now() - pausedAt;
    expect(staleForMs).toBeLessThan(MAX_LAG_MS + 1_000);
    await cluster.onReplica('SELECT pg_wal_replay_resume()');
    report(`read replica: replay paused -> stale reads for ${Math.round(staleForMs)} ms (DATABASE_READ_MAX_LAG_MS ${MAX_LAG_MS}, checked every 100 ms), then the primary (${Math.round(elapsedMs)} ms of polling)`);
  });

  it('should be unready, and answer a booking 503 (not 500), when DATABASE_URL reaches a standby', async () => {
    // As during a failover, when the balancer routes to a node that is still finishing its promotion.
    const match = await call('POST', '/matches', { title: 'On the standby', startsAt: '2027-01-04T18:00:00Z', capacity: 5 }, true);
    await waitFor('the replica to have the match', async () => (await availableSlots(String(match.body.id))) === 5, { timeoutMs: 10_000 });
    const onStandby = await startInProcessApp(cluster.replicaUrl, { ...GENEROUS_RATE_LIMITS, HOLD_SWEEP_INTERVAL_MS: '0', RECONCILE_INTERVAL_MS: '0' });
    try {
      expect((await fetch(`${onStandby.baseUrl}/health/ready`)).status).toBe(503);
      const booking = await fetch(`${onStandby.baseUrl}/api/v1/matches/${String(match.body.id)}/bookings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${signAccessToken({ sub: 'standby', admin: false }, DEVELOPMENT_JWT_SECRET, 60)}` },
        body: JSON.stringify({ slots: 1 }),
      });
      expect(booking.status).toBe(503);
      expect(((await booking.json()) as { type: string }).type).toBe('/problems/database-unavailable');
    } finally {
      await onStandby.close();
    }
  });

  it('should answer every read while the replica is killed under load', async () => {
    const match = await call('POST', '/matches', { title: 'Killed replica', startsAt: '2027-01-03T18:00:00Z', capacity: 10 }, true);
    const matchId = String(match.body.id);
    await waitFor('the replica to serve reads', async () => (await call('GET', `/matches/${matchId}`)).status === 200 && (await servedBy('replica')) > 0, {
      timeoutMs: 10_000,
    });
    const statuses: number[] = [];
    let running = true;
    const reader = async (): Promise<void> => {
      while (running) {
        statuses.push((await call('GET', `/matches/${matchId}`)).status, (await call('GET', '/matches?limit=5')).status);
      }
    };
    const readers = Promise.all([reader(), reader(), reader(), reader()]);
    await new Promise((resolve) => setTimeout(resolve, 500));
    cluster.killReplica();
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    running = false;
    await readers;

    expect(statuses.length).toBeGreaterThan(20);
    expect(statuses.filter((status) => status !== 200)).toEqual([]);
  });
});
