import { Client } from 'pg';
import { signAccessToken } from '../../src/auth/jwt';
import { DEVELOPMENT_JWT_SECRET } from '../../src/config/app-config';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';

/** The shutdown sequence of a real service process, receiving a real SIGTERM. */
describe('graceful shutdown on SIGTERM', () => {
  let databaseUrl: string;
  let service: ServiceProcess;

  beforeEach(async () => {
    databaseUrl = await createTestDatabase();
  });
  afterEach(async () => {
    await stopServiceProcess(service);
    await dropTestDatabase(databaseUrl);
  });

  it('should turn readiness 503 at once, keep serving during the delay, then exit 0', async () => {
    service = await startServiceProcess({
      DATABASE_URL: databaseUrl,
      SHUTDOWN_READINESS_DELAY_MS: '1500',
      SHUTDOWN_GRACE_PERIOD_MS: '5000',
    });

    service.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const ready = await fetch(`${service.baseUrl}/health/ready`);
    const live = await fetch(`${service.baseUrl}/health/live`);

    expect(ready.status).toBe(503);
    expect(await ready.json()).toMatchObject({ type: '/problems/not-ready', details: { lifecycle: { status: 'down' } } });
    expect(live.status).toBe(200);
    expect(live.headers.get('connection')).toBe('close');
    await expect(service.exited).resolves.toEqual({ code: 0, signal: null });
    expect(service.output()).toContain('Shutdown complete; exiting with code 0');
  });

  it('should let an in-flight booking finish within the grace period, answer it with Connection: close, and exit 0', async () => {
    service = await startServiceProcess({
      DATABASE_URL: databaseUrl,
      DATABASE_LOCK_TIMEOUT_MS: '8000',
      SHUTDOWN_READINESS_DELAY_MS: '100',
      SHUTDOWN_GRACE_PERIOD_MS: '5000',
    });
    const holder = new Client({ connectionString: databaseUrl });
    await holder.connect();
    try {
      const id = await insertMatch(holder);
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [id]);
      const booking = bookOne(service, id);
      await new Promise((resolve) => setTimeout(resolve, 300));
      service.child.kill('SIGTERM');
      await new Promise((resolve) => setTimeout(resolve, 600));
      await holder.query('ROLLBACK'); // the waiting booking gets the lock now, during the drain

      const response = await booking;
      expect(response.status).toBe(201);
      expect(response.headers.get('connection')).toBe('close');
      await expect(service.exited).resolves.toEqual({ code: 0, signal: null });
      const { rows } = await holder.query<{ booked_slots: number }>('SELECT booked_slots FROM matches WHERE id = $1', [id]);
      expect(rows[0]?.booked_slots).toBe(1);
    } finally {
      await holder.end();
    }
  });

  it('should roll back a transaction still open when the grace period runs out, and exit 1', async () => {
    // A booking that waits on a row lock held elsewhere is an in-flight transaction.
    service = await startServiceProcess({
      DATABASE_URL: databaseUrl,
      DATABASE_LOCK_TIMEOUT_MS: '8000',
      SHUTDOWN_READINESS_DELAY_MS: '100',
      SHUTDOWN_GRACE_PERIOD_MS: '1500',
    });
    const holder = new Client({ connectionString: databaseUrl });
    await holder.connect();
    try {
      const id = await insertMatch(holder);
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [id]);
      const booking = bookOne(service, id).then(
        (response) => response.status,
        () => 'connection dropped',
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      service.child.kill('SIGTERM');

      await expect(service.exited).resolves.toEqual({ code: 1, signal: null });
      expect(service.output()).toContain('Grace period of 1500 ms ran out with 1 request(s) in flight');
      await expect(booking).resolves.toBe('connection dropped');
      // its transaction was rolled back by the server: nothing booked, no session left behind
      // (the orphaned backend ends once it gets the lock and finds its client gone: give it a moment)
      await holder.query('ROLLBACK');
      const state = async () =>
        (
          await holder.query<{ booked: number; sessions: string }>(
            `SELECT (SELECT booked_slots FROM matches WHERE id = $1) AS booked,
                    (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'match-booking') AS sessions`,
            [id],
          )
        ).rows[0];
      const deadline = Date.now() + 2_000;
      while ((await state())?.sessions !== '0' && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(await state()).toEqual({ booked: 0, sessions: '0' });
    } finally {
      await holder.end();
    }
  });
});

async function insertMatch(client: Client): Promise<string> {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO matches (title, starts_at, capacity) VALUES ('m', now(), 5) RETURNING id`,
  );
  return rows[0]!.id;
}

function bookOne(service: ServiceProcess, matchId: string): Promise<Response> {
  const token = signAccessToken({ sub: 'alice', admin: false }, DEVELOPMENT_JWT_SECRET, 60);
  return fetch(`${service.baseUrl}/api/v1/matches/${matchId}/bookings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
    body: JSON.stringify({ slots: 1 }),
  });
}
