import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import Redis from 'ioredis';
import request from 'supertest';
import { LockService } from '../../src/locks/lock.service';
import { report, waitFor } from '../support/faults';
import { createMatch } from '../support/fixtures';
import { freePort } from '../support/ports';
import { type DedicatedRedis, startDedicatedRedis } from '../support/redis-server';
import { startTestApp, type TestApp } from '../support/test-app';

const GROUP = 'booking';

interface Sentinel {
  port: number;
  stop(): Promise<void>;
}

/** A redis-server in sentinel mode watching 127.0.0.1:`masterPort`, quick to call the master down (1 s). */
async function startSentinel(dir: string, masterPort: number): Promise<Sentinel> {
  const port = await freePort();
  const config = path.join(dir, `sentinel-${port}.conf`);
  // Sentinel rewrites its configuration file as it learns the group: it must be writable.
  await writeFile(
    config,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `sentinel monitor ${GROUP} 127.0.0.1 ${masterPort} 2`,
      `sentinel down-after-milliseconds ${GROUP} 1000`,
      `sentinel failover-timeout ${GROUP} 10000`,
      `sentinel parallel-syncs ${GROUP} 1`,
      '',
    ].join('\n'),
  );
  const child: ChildProcess = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    port,
    stop: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Redis under Sentinel (REDIS_SENTINELS, REDIS_SENTINEL_NAME): a real master, a replica and
 * three sentinels. The master is killed while keyed bookings go on: the sentinels promote the
 * replica, and the service's lock service, idempotency cache and rate-limit counters use the
 * new master without a restart, with no booking lost or doubled.
 */
describe('Redis under Sentinel', () => {
  let dir: string;
  let master: DedicatedRedis;
  let replica: DedicatedRedis;
  const sentinels: Sentinel[] = [];
  let observer: Redis;
  let t: TestApp;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'match-booking-sentinel-'));
    master = await startDedicatedRedis();
    replica = await startDedicatedRedis(undefined, ['--replicaof', '127.0.0.1', String(master.port)]);
    for (let i = 0; i < 3; i += 1) sentinels.push(await startSentinel(dir, master.port));
    observer = new Redis({ port: sentinels[0]!.port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    observer.on('error', () => undefined); // a sentinel still starting refuses the first connection
    // The sentinels must know the replica and each other before a failover can happen.
    await waitFor(
      'the sentinels to discover the replica and each other',
      async () => {
        const [info] = (await observer.call('SENTINEL', 'MASTERS')) as string[][];
        const fields = new Map<string, string>();
        for (let i = 0; i + 1 < (info?.length ?? 0); i += 2) fields.set(info![i]!, info![i + 1]!);
        return fields.get('num-slaves') === '1' && fields.get('num-other-sentinels') === '2';
      },
      { timeoutMs: 15_000, intervalMs: 200 },
    );
    t = await startTestApp({
      REDIS_SENTINELS: sentinels.map((sentinel) => `127.0.0.1:${sentinel.port}`).join(','),
      REDIS_SENTINEL_NAME: GROUP,
      REDIS_COMMAND_TIMEOUT_MS: '500',
    });
  });
  afterAll(async () => {
    await t?.close();
    observer?.disconnect();
    for (const sentinel of sentinels) await sentinel.stop();
    await replica?.stop();
    await master?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const book = (matchId: string, customer: string, key: string) =>
    request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', `Bearer ${t.token(customer)}`).set('Idempotency-Key', key).send({ slots: 1 });

  async function currentMasterPort(): Promise<number> {
    const [, port] = (await observer.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', GROUP)) as [string, string];
    return Number(port);
  }

  /** What the service keeps in Redis, read straight from the server at `port`. */
  async function serviceKeysOn(port: number): Promise<string[]> {
    const direct = new Redis({ port, host: '127.0.0.1', maxRetriesPerRequest: 1 });
    direct.on('error', () => undefined); // a failed read fails the test through the command itself
    try {
      return [...(await direct.keys('idempotency-response:*')), ...(await direct.keys('rate-limit:*'))];
    } finally {
      direct.disconnect();
    }
  }

  it('should use the master through the sentinels, and the new master after a failover, without a restart, losing or doubling no booking', async () => {
    const matchId = await createMatch(t, 10_000);
    await book(matchId, 'before', 'before-key').expect(201);
    expect(await serviceKeysOn(master.port)).toEqual(expect.arrayContaining([expect.stringMatching(/^idempotency-response:/), expect.stringMatching(/^rate-limit:/)]));
    await request(t.server).get('/health/ready').expect(200).expect((r) => expect(r.body).toMatchObject({ details: { redis: { status: 'up' } } }));

    // Keyed bookings go on while the master dies: each client sends each key until it gets a 201.
    let running = true;
    const answered = new Map<string, string>();
    const statuses: number[] = [];
    const client = async (n: number): Promise<void> => {
      for (let i = 0; running; i += 1) {
        const key = `during-${n}-${i}`;
        for (;;) {
          const response = await book(matchId, `during-${n}-${i}`, key);
          statuses.push(response.status);
          if (response.status === 201) {
            answered.set(key, (response.body as { id: string }).id);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
    };
    const load = Promise.all([0, 1, 2, 3].map((n) => client(n)));
    await new Promise((resolve) => setTimeout(resolve, 300));
    await master.stop();
    const { elapsedMs: failoverMs } = await waitFor('the sentinels to promote the replica', async () => (await currentMasterPort()) === replica.port, {
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    // The service uses the new master by itself: a lock, a cached answer and a counter appear there.
    const { elapsedMs: recoveredMs } = await waitFor(
      'the lock service to take a lock on the new master',
      async () => (await t.app.get(LockService).withLock('sentinel-probe', { ttlMs: 2_000 }, () => Promise.resolve(true)).catch(() => null)) !== null,
      { timeoutMs: 15_000, intervalMs: 100 },
    );
    await book(matchId, 'after', 'after-key').expect(201);
    await book(matchId, 'after', 'after-key').expect(201).expect('idempotent-replayed', 'true');
    // The rate limiter leaves a failing Redis alone for a second (counting in memory meanwhile): its counters come back too.
    let probes = 0;
    await waitFor(
      'the rate limits to count on the new master',
      async () => {
        probes += 1;
        await book(matchId, `after-${probes}`, `after-${probes}`).expect(201);
        return (await serviceKeysOn(replica.port)).includes(`rate-limit:customer:after-${probes}`);
      },
      { timeoutMs: 10_000, intervalMs: 200 },
    );
    expect(await serviceKeysOn(replica.port)).toEqual(expect.arrayContaining([expect.stringMatching(/^idempotency-response:/)]));
    await request(t.server).get('/health/ready').expect(200).expect((r) => expect(r.body).toMatchObject({ details: { redis: { status: 'up' } } }));
    running = false;
    await load;

    // No request failed for Redis (it only speeds things up), and every key booked exactly once.
    expect(statuses.filter((status) => status !== 201 && status !== 409)).toEqual([]);
    for (const [key, bookingId] of answered) {
      const replay = await book(matchId, key, key);
      expect([replay.status, (replay.body as { id: string }).id]).toEqual([201, bookingId]);
    }
    const rows = await t.dataSource.query<Array<{ customer_id: string; n: number }>>(
      `SELECT customer_id, count(*)::int AS n FROM bookings WHERE match_id = $1 GROUP BY customer_id HAVING count(*) > 1`,
      [matchId],
    );
    expect(rows).toEqual([]);
    const [{ total }] = await t.dataSource.query<[{ total: number }]>('SELECT count(*)::int AS total FROM bookings WHERE match_id = $1', [matchId]);
    expect(total).toBe(answered.size + 2 + probes);
    report(
      `Redis Sentinel: master killed; replica promoted after ${(failoverMs / 1000).toFixed(1)} s, the service locked on the new master ` +
        `${((failoverMs + recoveredMs) / 1000).toFixed(1)} s after the kill; ${answered.size} keyed bookings meanwhile, none lost or doubled`,
    );
  });
});
