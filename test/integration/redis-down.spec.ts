import type Redis from 'ioredis';
import request from 'supertest';
import { TransactionRunner } from '../../src/database/transaction-runner';
import { HoldSweeper } from '../../src/holds/hold-sweeper';
import type { Exclusively } from '../../src/jobs/job-runner';
import { LockService } from '../../src/locks/lock.service';
import { REDIS_CLIENT } from '../../src/redis/redis.module';
import { createMatch, matchCounters } from '../support/fixtures';
import { type DedicatedRedis, startDedicatedRedis } from '../support/redis-server';
import { startTestApp, type TestApp } from '../support/test-app';

/** Redis makes things faster; PostgreSQL keeps them correct. Losing Redis loses no correctness. */
describe('with Redis down', () => {
  let redis: DedicatedRedis;
  let t: TestApp;
  beforeAll(async () => {
    redis = await startDedicatedRedis();
    t = await startTestApp({ REDIS_URL: redis.url, HOLD_SWEEP_INTERVAL_MS: '0' });
  });
  afterAll(async () => {
    await t.close();
    await redis.stop();
  });

  const auth = (customer = 'alice') => `Bearer ${t.token(customer)}`;
  async function until(condition: () => Promise<boolean> | boolean, what: string): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (!(await condition())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  it('should keep bookings, holds and idempotency correct through PostgreSQL, report Redis down, and use Redis again once it returns', async () => {
    const matchId = await createMatch(t, 100);
    await until(() => t.app.get(LockService).available, 'Redis is connected');
    await redis.stop();
    await until(() => !t.app.get(LockService).available, 'the client sees Redis down');

    const ready = await request(t.server).get('/health/ready').expect(200);
    expect(ready.body).toMatchObject({ status: 'degraded', details: { redis: { status: 'degraded' } } });
    await request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', auth()).send({ slots: 2 }).expect(201);
    const hold = (await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', auth()).send({ slots: 1 }).expect(201)).body as { id: string };
    await request(t.server).post(`/api/v1/holds/${hold.id}/confirm`).set('Authorization', auth()).expect(201);
    const duplicates = await Promise.all(
      Array.from({ length: 20 }, () =>
        request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', auth('bob')).set('Idempotency-Key', 'while-redis-is-down').send({ slots: 1 }),
      ),
    );
    for (const response of duplicates) expect([201, 409]).toContain(response.status);
    const bobs = await t.dataSource.query<[{ count: string }]>(`SELECT count(*) FROM bookings WHERE match_id = $1 AND customer_id = 'bob'`, [matchId]);
    expect(Number(bobs[0].count)).toBe(1);
    expect(await matchCounters(t, matchId)).toMatchObject({ bookedSlots: 4, confirmedSlots: 4 });

    redis = await startDedicatedRedis(redis.port);
    await until(() => t.app.get(LockService).available, 'the client reconnects');
    await request(t.server).get('/health/ready').expect(200).expect((r) => expect(r.body).toMatchObject({ status: 'ok' }));
    // Redis is used again: a completed idempotent write is cached there.
    await request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', auth('carol')).set('Idempotency-Key', 'after-redis-returned').send({ slots: 1 }).expect(201);
    const client = t.app.get<Redis>(REDIS_CLIENT);
    expect(await client.keys('idempotency-response:*')).toHaveLength(1);
  });

  it('should not let two sweeps that both believe they hold the lock corrupt the counters', async () => {
    const matches = await Promise.all(Array.from({ length: 6 }, () => createMatch(t, 10)));
    for (const matchId of matches) {
      for (let i = 0; i < 3; i += 1) {
        await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', auth()).send({ slots: 2 }).expect(201);
      }
    }
    await t.dataSource.query(`UPDATE holds SET expires_at = now() - interval '1 second' WHERE match_id = ANY($1::uuid[])`, [matches]);
    const sweeper = t.app.get(HoldSweeper);
    // Both believe they hold the lock: each step runs in a plain transaction, without the advisory lock.
    const transactions = t.app.get(TransactionRunner);
    const withoutTheLock: Exclusively = (step) => transactions.run('sweep-holds', step);
    const sweepAsIfLocked = () => sweeper.run(withoutTheLock);

    const [first, second] = await Promise.all([sweepAsIfLocked(), sweepAsIfLocked()]);

    expect((first ?? 0) + (second ?? 0)).toBe(18); // every hold expired exactly once
    for (const matchId of matches) {
      const [row] = await t.dataSource.query<[{ held_slots: number; active: string }]>(
        `SELECT held_slots, (SELECT COALESCE(SUM(slots), 0) FROM holds WHERE match_id = m.id AND status = 'active') AS active FROM matches m WHERE id = $1`,
        [matchId],
      );
      expect(row).toEqual({ held_slots: 0, active: '0' });
    }
  });
});
