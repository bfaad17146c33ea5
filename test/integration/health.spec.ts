import request from 'supertest';
import { type DedicatedRedis, startDedicatedRedis } from '../support/redis-server';
import { startTestApp, type TestApp } from '../support/test-app';

/** Readiness follows PostgreSQL; Redis only degrades it, so a Redis outage cannot empty the load balancer. */
describe('health checks', () => {
  let redis: DedicatedRedis;
  let t: TestApp;
  beforeAll(async () => {
    redis = await startDedicatedRedis();
    t = await startTestApp({ REDIS_URL: redis.url });
  });
  afterAll(async () => {
    await t.close();
    await redis.stop();
  });

  const ready = () => request(t.server).get('/health/ready');

  async function pollReady(predicate: (body: { status: string; details: Record<string, { status: string }> }) => boolean): Promise<void> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const response = await ready();
      if (predicate(response.body)) return;
      if (Date.now() > deadline) throw new Error(`readiness never matched; last answer: ${JSON.stringify(response.body)}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  it('should need no token and report PostgreSQL, Redis and the lifecycle as up', async () => {
    const live = await request(t.server).get('/health/live').expect(200);
    const response = await ready().expect(200);

    expect(live.body).toMatchObject({ status: 'ok' });
    expect(response.body).toMatchObject({
      status: 'ok',
      details: { lifecycle: { status: 'up' }, database: { status: 'up' }, redis: { status: 'up' } },
    });
  });

  it('should stay ready (200, degraded) while Redis is down, and report Redis up again when it returns without a restart', async () => {
    await redis.stop();
    await pollReady((body) => body.details?.redis?.status === 'degraded');
    const degraded = await ready().expect(200);
    expect(degraded.body).toMatchObject({ status: 'degraded', details: { database: { status: 'up' }, redis: { status: 'degraded' } } });

    redis = await startDedicatedRedis(redis.port);
    await pollReady((body) => body.status === 'ok' && body.details?.redis?.status === 'up');
  });
});
