import { randomBytes, randomInt } from 'node:crypto';
import Redis from 'ioredis';
import request from 'supertest';
import { Metrics } from '../../src/observability/metrics';
import { type DedicatedRedis, sharedRedisUrl, startDedicatedRedis } from '../support/redis-server';
import { startTestApp, type TestApp } from '../support/test-app';

const API = '/api/v1';
const PROBLEM_JSON = /^application\/problem\+json(;|$)/;
const PER_CUSTOMER = 3;
const PER_IP = 6;
const WINDOW_MS = 1_500;
const SMALL_LIMITS = {
  RATE_LIMIT_PER_CUSTOMER: String(PER_CUSTOMER),
  RATE_LIMIT_PER_IP: String(PER_IP),
  RATE_LIMIT_WINDOW_MS: String(WINDOW_MS),
  // The test client stands for a load balancer on loopback that tells each client's address.
  TRUST_PROXY: 'loopback',
};

/*
 * Counters live in Redis by customer id and client IP, and other test files share the same
 * Redis: every test here uses customer ids and client addresses (X-Forwarded-For, believed
 * from loopback: TRUST_PROXY) of its own, so no other traffic can count against its small limits.
 */
const run = randomBytes(4).toString('hex');
let sequence = 0;
const newCustomer = (): string => `rl-${run}-${(sequence += 1)}`;
const newIp = (): string => `10.${randomInt(256)}.${randomInt(256)}.${(sequence += 1) % 250}`;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** A match made by an admin of its own from an address of its own, so that it costs no test any of its writes. */
async function newMatch(t: TestApp): Promise<string> {
  const response = await request(t.server)
    .post(`${API}/matches`)
    .set('X-Forwarded-For', newIp())
    .set('Authorization', `Bearer ${t.token(newCustomer(), { admin: true })}`)
    .send({ title: 'Rate limits', startsAt: '2026-12-01T18:30:00Z', capacity: 1000 })
    .expect(201);
  return (response.body as { id: string }).id;
}

function book(t: TestApp, matchId: string, ip: string, customerId?: string): request.Test {
  const call = request(t.server).post(`${API}/matches/${matchId}/bookings`).set('X-Forwarded-For', ip).send({ slots: 1 });
  return customerId === undefined ? call : call.set('Authorization', `Bearer ${t.token(customerId)}`);
}

async function bookingsOf(t: TestApp, customerId: string): Promise<number> {
  const [row] = await t.dataSource.query<Array<{ count: string }>>('SELECT count(*) AS count FROM bookings WHERE customer_id = $1', [customerId]);
  return Number(row?.count);
}

/** Asserts a 429 rate-limited problem for `limit`, with a Retry-After that matches the body; returns the seconds. */
function expectRateLimited(response: request.Response, limit: 'customer' | 'ip'): number {
  expect({ status: response.status, contentType: response.headers['content-type'] }).toEqual({
    status: 429,
    contentType: expect.stringMatching(PROBLEM_JSON),
  });
  const body = JSON.parse(response.text) as Record<string, unknown>;
  expect(body).toEqual(
    expect.objectContaining({
      type: '/problems/rate-limited',
      title: 'Too many requests',
      status: 429,
      detail: expect.any(String),
      limit,
      retryAfterSeconds: expect.any(Number),
    }),
  );
  const seconds = body.retryAfterSeconds as number;
  expect(Number.isInteger(seconds) && seconds >= 1 && seconds <= Math.ceil(WINDOW_MS / 1000)).toBe(true);
  expect(response.headers['retry-after']).toBe(String(seconds));
  return seconds;
}

async function rateLimited(t: TestApp, limit: string): Promise<number> {
  const metric = t.app.get(Metrics).registry.getSingleMetric('rate_limited_requests_total');
  if (!metric) throw new Error('no metric rate_limited_requests_total');
  const { values } = await metric.get();
  return values.filter((sample) => sample.labels.limit === limit).reduce((sum, sample) => sum + sample.value, 0);
}

describe('rate limits on writes', () => {
  describe('counted in Redis, shared by two instances', () => {
    let a: TestApp;
    let b: TestApp;
    beforeAll(async () => {
      [a, b] = await Promise.all([
        startTestApp({ ...SMALL_LIMITS, REDIS_URL: sharedRedisUrl() }),
        startTestApp({ ...SMALL_LIMITS, REDIS_URL: sharedRedisUrl() }),
      ]);
    });
    afterAll(async () => {
      await Promise.all([a?.close(), b?.close()]);
    });

    it('should answer the write after the limit with 429 problem+json and Retry-After, and write nothing', async () => {
      const matchId = await newMatch(a);
      const customer = newCustomer();
      const ip = newIp();
      const refusedBefore = await rateLimited(a, 'customer');

      for (let i = 0; i < PER_CUSTOMER; i += 1) await book(a, matchId, ip, customer).expect(201);
      const refused = await book(a, matchId, ip, customer);

      expectRateLimited(refused, 'customer');
      expect(await bookingsOf(a, customer)).toBe(PER_CUSTOMER);
      expect(await rateLimited(a, 'customer')).toBe(refusedBefore + 1);
    });

    it('should count a write whatever the case of its path (routing ignores case)', async () => {
      const matchId = await newMatch(a);
      const customer = newCustomer();
      const ip = newIp();
      const shouting = () =>
        request(a.server).post(`/API/V1/MATCHES/${matchId}/BOOKINGS`).set('X-Forwarded-For', ip).set('Authorization', `Bearer ${a.token(customer)}`).send({ slots: 1 });

      for (let i = 0; i < PER_CUSTOMER; i += 1) await shouting().expect(201);

      expectRateLimited(await shouting(), 'customer');
      expect(await bookingsOf(a, customer)).toBe(PER_CUSTOMER);
    });

    it('should not limit another customer, nor the limited customer’s reads, nor the health checks', async () => {
      const matchId = await newMatch(a);
      const [limited, other] = [newCustomer(), newCustomer()];
      const ip = newIp();
      for (let i = 0; i < PER_CUSTOMER; i += 1) await book(a, matchId, ip, limited).expect(201);
      expectRateLimited(await book(a, matchId, ip, limited), 'customer');

      for (let i = 0; i < PER_CUSTOMER; i += 1) await book(a, matchId, newIp(), other).expect(201);
      for (let i = 0; i < 3 * PER_IP; i += 1) {
        await request(a.server).get(`${API}/bookings`).set('X-Forwarded-For', ip).set('Authorization', `Bearer ${a.token(limited)}`).expect(200);
        await request(a.server).get(`${API}/matches/${matchId}`).set('X-Forwarded-For', ip).set('Authorization', `Bearer ${a.token(limited)}`).expect(200);
        await request(a.server).get('/health/ready').set('X-Forwarded-For', ip).expect(200);
        await request(a.server).get('/health/live').set('X-Forwarded-For', ip).expect(200);
      }
      expect(await bookingsOf(a, limited)).toBe(PER_CUSTOMER);
      expect(await bookingsOf(a, other)).toBe(PER_CUSTOMER);
    });

    it('should limit unauthenticated writes per IP (before authentication answers 401)', async () => {
      const matchId = await newMatch(a);
      const ip = newIp();
      for (let i = 0; i < PER_IP; i += 1) await book(a, matchId, ip).expect(401);

      expectRateLimited(await book(a, matchId, ip), 'ip');
      // A token that does not verify is not a customer: it counts against the IP only.
      expectRateLimited(await book(a, matchId, ip).set('Authorization', 'Bearer not-a-token'), 'ip');
      // Another address is not affected.
      await book(a, matchId, newIp()).expect(401);
    });

    it('should limit the writes of many customers from one IP', async () => {
      const matchId = await newMatch(a);
      const ip = newIp();
      const customers = Array.from({ length: PER_IP + 1 }, newCustomer);
      for (const customer of customers.slice(0, PER_IP)) await book(a, matchId, ip, customer).expect(201);
      const last = customers[PER_IP] as string;

      expectRateLimited(await book(a, matchId, ip, last), 'ip');
      expect(await bookingsOf(a, last)).toBe(0);
      // The same customer from another address writes: it was the address that was limited.
      await book(a, matchId, newIp(), last).expect(201);
    });

    it('should let the customer write again once the window is over', async () => {
      const matchId = await newMatch(a);
      const customer = newCustomer();
      const ip = newIp();
      for (let i = 0; i < PER_CUSTOMER; i += 1) await book(a, matchId, ip, customer).expect(201);
      const retryAfterSeconds = expectRateLimited(await book(a, matchId, ip, customer), 'customer');

      await sleep(retryAfterSeconds * 1000 + 100);

      for (let i = 0; i < PER_CUSTOMER; i += 1) await book(a, matchId, ip, customer).expect(201);
      expectRateLimited(await book(a, matchId, ip, customer), 'customer');
      expect(await bookingsOf(a, customer)).toBe(2 * PER_CUSTOMER);
    });

    it('should share the count between instances using the same Redis', async () => {
      const [matchOnA, matchOnB] = await Promise.all([newMatch(a), newMatch(b)]);
      const customer = newCustomer();
      const ip = newIp();
      await book(a, matchOnA, ip, customer).expect(201);
      await book(b, matchOnB, ip, customer).expect(201);
      await book(a, matchOnA, ip, customer).expect(201);

      expectRateLimited(await book(b, matchOnB, ip, customer), 'customer');
      expectRateLimited(await book(a, matchOnA, ip, customer), 'customer');
      expect((await bookingsOf(a, customer)) + (await bookingsOf(b, customer))).toBe(PER_CUSTOMER);
    });
  });

  describe('counted in memory (no REDIS_URL)', () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp(SMALL_LIMITS);
    });
    afterAll(async () => {
      await t?.close();
    });

    it('should apply the same limits', async () => {
      const matchId = await newMatch(t);
      const customer = newCustomer();
      const ip = newIp();
      for (let i = 0; i < PER_CUSTOMER; i += 1) await book(t, matchId, ip, customer).expect(201);
      expectRateLimited(await book(t, matchId, ip, customer), 'customer');
      await book(t, matchId, newIp(), newCustomer()).expect(201);
      expect(await bookingsOf(t, customer)).toBe(PER_CUSTOMER);
    });

    it('should turn a limit off with 0', async () => {
      const unlimited = await startTestApp({ ...SMALL_LIMITS, RATE_LIMIT_PER_CUSTOMER: '0', RATE_LIMIT_PER_IP: '0' });
      try {
        const matchId = await newMatch(unlimited);
        const customer = newCustomer();
        const ip = newIp();
        for (let i = 0; i < 2 * PER_IP; i += 1) await book(unlimited, matchId, ip, customer).expect(201);
      } finally {
        await unlimited.close();
      }
    });
  });

  describe('when Redis stops', () => {
    let redis: DedicatedRedis;
    let t: TestApp;
    const logLines: string[] = [];
    beforeAll(async () => {
      redis = await startDedicatedRedis();
      t = await startTestApp(
        { ...SMALL_LIMITS, REDIS_URL: redis.url },
        { logDestination: { write: (line: string) => logLines.push(line) } },
      );
    });
    afterAll(async () => {
      await t?.close();
      await redis?.stop();
    });

    it('should count in memory: writes keep working, limits still hold, and the outage is logged once', async () => {
      const matchId = await newMatch(t);
      const counted = newCustomer();
      await book(t, matchId, newIp(), counted).expect(201);
      const probe = new Redis(redis.url, { maxRetriesPerRequest: 0 });
      try {
        expect(await probe.get(`rate-limit:customer:${counted}`)).toBe('1');
      } finally {
        probe.disconnect();
      }

      await redis.stop();

      // Every write answers 201 (under the limit) or 429 (over it): none fails because of Redis.
      const statuses: number[] = [];
      for (let round = 0; round < 3; round += 1) {
        const customer = newCustomer();
        const ip = newIp();
        for (let i = 0; i < PER_CUSTOMER; i += 1) statuses.push((await book(t, matchId, ip, customer)).status);
        const refused = await book(t, matchId, ip, customer);
        expectRateLimited(refused, 'customer');
        expect(await bookingsOf(t, customer)).toBe(PER_CUSTOMER);
        // Past the 1 s pause after a failure, so Redis is tried (and fails) again.
        await sleep(1_100);
      }
      expect(statuses).toEqual(Array.from({ length: 3 * PER_CUSTOMER }, () => 201));
      await request(t.server).get('/health/ready').expect(200);

      const fallbackMetric = t.app.get(Metrics).registry.getSingleMetric('rate_limit_memory_fallbacks_total');
      const fallbacks = (await fallbackMetric?.get())?.values.reduce((sum, sample) => sum + sample.value, 0) ?? 0;
      expect(fallbacks).toBeGreaterThanOrEqual(3 * (PER_CUSTOMER + 1));
      const warnings = logLines.filter((line) => line.includes('rate limits are counted in memory'));
      expect(warnings).toHaveLength(1);
    });
  });
});
