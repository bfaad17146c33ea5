import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { JobRunner } from '../../src/jobs/job-runner';
import { WebhookRelay } from '../../src/webhooks/webhook-relay';
import { createMatch } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/test-app';

/** Sends a booking request over a raw socket and hangs up without reading the answer. */
function bookAndHangUp(app: TestApp, matchId: string, customer: string): Promise<void> {
  const { port } = app.server.address() as AddressInfo;
  const body = JSON.stringify({ slots: 1 });
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(
        `POST /api/v1/matches/${matchId}/bookings HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${app.token(customer)}\r\n` +
          `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        () => setTimeout(() => {
          socket.destroy();
          resolve();
        }, 50),
      );
    });
    socket.on('error', reject);
  });
}

/**
 * Nest destroys the database pool in TypeORM's onApplicationShutdown, and runs the modules'
 * onApplicationShutdown hooks in an order of its own: work that needs the pool to finish (a
 * job's steps, a webhook attempt's outcome) must stop and be awaited before any of them.
 */
describe('the order of the shutdown hooks', () => {
  const order: string[] = [];
  const originals = {
    destroy: DataSource.prototype.destroy,
    jobs: JobRunner.prototype.beforeApplicationShutdown,
    relay: WebhookRelay.prototype.beforeApplicationShutdown,
  };

  beforeAll(() => {
    DataSource.prototype.destroy = async function (this: DataSource) {
      order.push('database pool destroyed');
      return originals.destroy.call(this);
    };
    JobRunner.prototype.beforeApplicationShutdown = async function (this: JobRunner) {
      await originals.jobs.call(this);
      order.push('jobs stopped');
    };
    WebhookRelay.prototype.beforeApplicationShutdown = async function (this: WebhookRelay) {
      await originals.relay.call(this);
      order.push('webhook attempts finished');
    };
  });
  afterAll(() => {
    DataSource.prototype.destroy = originals.destroy;
    JobRunner.prototype.beforeApplicationShutdown = originals.jobs;
    WebhookRelay.prototype.beforeApplicationShutdown = originals.relay;
  });

  it('should stop the periodic jobs and finish the webhook attempts before the database pool is destroyed', async () => {
    const t = await startTestApp({});
    await t.close();

    const destroyed = order.indexOf('database pool destroyed');
    expect(destroyed).toBeGreaterThan(-1);
    expect(order.indexOf('jobs stopped')).toBeGreaterThan(-1);
    expect(order.indexOf('jobs stopped')).toBeLessThan(destroyed);
    expect(order.indexOf('webhook attempts finished')).toBeGreaterThan(-1);
    expect(order.indexOf('webhook attempts finished')).toBeLessThan(destroyed);
  });
});

describe('a shutdown with bookings under way whose clients went away', () => {
  it('should let their batches finish before the database pool is destroyed', async () => {
    const home = await startTestApp({});
    const holder = new Client({ connectionString: home.databaseUrl });
    await holder.connect();
    try {
      const instance = await startTestApp({}, { sharedDatabaseUrl: home.databaseUrl });
      const matchId = await createMatch(home, 10);
      // The first batch waits on this lock; the others queue behind it for the same match.
      await holder.query('BEGIN');
      await holder.query('SELECT id FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
      await Promise.all(['c1', 'c2', 'c3', 'c4', 'c5'].map((customer) => bookAndHangUp(instance, matchId, customer)));

      const closed = instance.close();
      await sleep(300);
      await holder.query('ROLLBACK');
      await closed;

      const [{ confirmed }] = await home.dataSource.query<[{ confirmed: number }]>(
        `SELECT count(*)::int AS confirmed FROM bookings WHERE match_id = $1 AND status = 'confirmed'`,
        [matchId],
      );
      expect(confirmed).toBe(5);
      const [{ booked_slots }] = await home.dataSource.query<[{ booked_slots: number }]>('SELECT booked_slots FROM matches WHERE id = $1', [matchId]);
      expect(booked_slots).toBe(5);
    } finally {
      await holder.end();
      await home.close();
    }
  });
});
