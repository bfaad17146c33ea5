import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { createMatch, untilDispatched } from '../support/fixtures';
import { freePort } from '../support/ports';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';
import { jwtSecretOf, startTestApp, type TestApp } from '../support/test-app';
import { type ReceivedWebhook, startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

/** Fast relaying and short retries; receivers run on loopback. */
const FAST_WEBHOOKS = {
  WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
  WEBHOOK_DISPATCH_INTERVAL_MS: '50',
  WEBHOOK_RELAY_INTERVAL_MS: '50',
  WEBHOOK_TIMEOUT_MS: '1000',
  WEBHOOK_RETRY_SCHEDULE: '0,0,0,1,1,1,1,1,1,1',
  HOLD_SWEEP_INTERVAL_MS: '0',
  RECONCILE_INTERVAL_MS: '0',
};

interface Endpoint {
  id: string;
  url: string;
  secret: string;
  eventTypes: string[] | null;
}

function headersOf(webhook: ReceivedWebhook): Record<string, string> {
  return Object.fromEntries(Object.entries(webhook.headers).map(([name, value]) => [name, String(value)]));
}

/** Webhooks to real HTTP receivers: signed, at least once, never in the way of bookings. */
describe('webhooks', () => {
  let t: TestApp;
  const receivers: WebhookReceiver[] = [];
  beforeAll(async () => {
    t = await startTestApp(FAST_WEBHOOKS);
  });
  afterEach(async () => {
    await Promise.all(receivers.splice(0).map((receiver) => receiver.close()));
    // Each test registers its own endpoints: remove them, so the next test's receivers get only their own events.
    await t.dataSource.query('DELETE FROM webhook_endpoints');
  });
  afterAll(async () => {
    await t.close();
  });

  const admin = () => `Bearer ${t.token('admin', { admin: true })}`;
  const as = (customer: string) => `Bearer ${t.token(customer)}`;

  async function receiver(...args: Parameters<typeof startWebhookReceiver>): Promise<WebhookReceiver> {
    const started = await startWebhookReceiver(...args);
    receivers.push(started);
    return started;
  }

  async function register(app: TestApp, url: string, eventTypes?: string[]): Promise<Endpoint> {
    const response = await request(app.server)
      .post('/api/v1/admin/webhook-endpoints')
      .set('Authorization', admin())
      .send({ url, ...(eventTypes && { eventTypes }) })
      .expect(201);
    return response.body as Endpoint;
  }

  const book = (app: TestApp, matchId: string, customer = 'alice') =>
    request(app.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as(customer)).send({ slots: 1 });

  it('should sign each delivery so that the standardwebhooks package verifies it, and a wrong secret does not', async () => {
    const hooks = await receiver();
    const endpoint = await register(t, hooks.url, ['booking.confirmed']);
    expect(endpoint.secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const matchId = await createMatch(t, 5);
    const booked = (await book(t, matchId).expect(201)).body as { id: string };

    await hooks.waitFor((received) => received.length >= 1);
    const [delivery] = hooks.received;
    const payload = new Webhook(endpoint.secret).verify(delivery!.body, headersOf(delivery!)) as { id: string; type: string; data: unknown };
    expect(payload).toMatchObject({ type: 'booking.confirmed', data: booked });
    expect(delivery!.headers['webhook-id']).toBe(payload.id);
    const wrongSecret = (await register(t, 'http://127.0.0.1:9/unused')).secret;
    expect(() => new Webhook(wrongSecret).verify(delivery!.body, headersOf(delivery!))).toThrow();
    // Only the types it asked for: the match creation went to no one.
    expect(hooks.events().map((event) => event.type)).toEqual(['booking.confirmed']);
  });

  it('should retry a receiver that answers 500 until it answers 200, with the same webhook-id each time', async () => {
    const hooks = await receiver(0, (_request, n) => (n <= 3 ? 500 : 200));
    const endpoint = await register(t, hooks.url, ['booking.confirmed']);
    const matchId = await createMatch(t, 5);
    await book(t, matchId).expect(201);

    await hooks.waitFor((received) => received.length >= 4);
    await new Promise((resolve) => setTimeout(resolve, 300)); // no fifth attempt after the 200
    expect(hooks.received).toHaveLength(4);
    expect(new Set(hooks.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
    const deliveries = await request(t.server).get(`/api/v1/admin/webhook-endpoints/${endpoint.id}/deliveries`).set('Authorization', admin()).expect(200);
    expect((deliveries.body as { items: unknown[] }).items).toEqual([expect.objectContaining({ status: 'delivered', attempts: 4, lastStatus: 200 })]);
  });

  it('should deliver everything to a receiver that was down for a while, once it is back', async () => {
    const port = await freePort();
    const endpoint = await register(t, `http://127.0.0.1:${port}/hooks`, ['booking.confirmed']);
    const matchId = await createMatch(t, 10);
    const booked = await Promise.all([1, 2, 3, 4, 5].map(async (i) => ((await book(t, matchId, `down-${i}`).expect(201)).body as { id: string }).id));
    // Nothing listens yet: wait until each of the five deliveries has failed an attempt.
    const deadline = Date.now() + 15_000;
    for (;;) {
      const listed = await request(t.server).get(`/api/v1/admin/webhook-endpoints/${endpoint.id}/deliveries`).set('Authorization', admin()).expect(200);
      const failedOnce = (listed.body as { items: Array<{ lastError: string | null }> }).items.filter((item) => item.lastError !== null);
      if (failedOnce.length === 5) break;
      if (Date.now() > deadline) throw new Error(`only ${failedOnce.length} of 5 deliveries failed an attempt within 15 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }

    const hooks = await receiver(port);
    await hooks.waitFor((received) => new Set(received.map((r) => r.headers['webhook-id'])).size >= 5, 20_000);
    expect(hooks.events().map((event) => event.data.id).sort()).toEqual(expect.arrayContaining(booked.sort()));
    const deliveries = await request(t.server).get(`/api/v1/admin/webhook-endpoints/${endpoint.id}/deliveries`).set('Authorization', admin()).expect(200);
    const items = (deliveries.body as { items: Array<{ attempts: number; status: string }> }).items;
    expect(items.every((item) => item.attempts > 1)).toBe(true);
  });

  it('should mark a delivery failed after its last retry, show it to admins, and send it again on redelivery', async () => {
    // A database of its own: no other instance with another retry schedule relays its deliveries.
    const app = await startTestApp({ ...FAST_WEBHOOKS, WEBHOOK_RETRY_SCHEDULE: '0,0' });
    try {
      const hooks = await receiver(0, () => 503);
      const endpoint = await register(app, hooks.url, ['match.created']);
      await createMatch(app, 1);
      await hooks.waitFor((received) => received.length >= 3);
      const failed = await waitForDelivery(app, endpoint.id, 'failed');
      expect(failed).toMatchObject({ attempts: 3, lastStatus: 503, eventType: 'match.created' });

      hooks.setBehaviour(() => 204);
      const redelivered = await request(app.server).post(`/api/v1/admin/webhook-deliveries/${failed.id}/redeliver`).set('Authorization', admin()).expect(200);
      expect(redelivered.body).toMatchObject({ id: failed.id, status: 'pending', attempts: 0 });
      await hooks.waitFor((received) => received.length >= 4);
      expect(await waitForDelivery(app, endpoint.id, 'delivered')).toMatchObject({ id: failed.id, attempts: 1 });
      await request(app.server).post('/api/v1/admin/webhook-deliveries/00000000-0000-4000-8000-000000000000/redeliver').set('Authorization', admin()).expect(404);
    } finally {
      await app.close();
    }
  });

  it('should not slow bookings down while an endpoint hangs', async () => {
    const matchId = await createMatch(t, 100_000);
    const medianBookingMs = async (label: string): Promise<number> => {
      const times: number[] = [];
      for (let i = 0; i < 40; i += 1) {
        const started = performance.now();
        await book(t, matchId, `${label}-${i}`).expect(201);
        times.push(performance.now() - started);
      }
      return times.sort((a, b) => a - b)[times.length >> 1]!;
    };
    const without = await medianBookingMs('quiet');
    const hanging = await receiver(0, () => 'hang');
    await register(t, hanging.url, ['booking.confirmed']);
    const healthy = await receiver();
    await register(t, healthy.url, ['booking.confirmed']);
    const withHang = await medianBookingMs('hang');
    // eslint-disable-next-line no-console
    console.log(`[measured] booking latency, median of 40 sequential bookings: ${without.toFixed(1)} ms without webhooks, ${withHang.toFixed(1)} ms with a hanging and a healthy endpoint`);
    expect(withHang).toBeLessThan(without * 2 + 20);
    // The healthy endpoint got its events although the other hangs.
    await healthy.waitFor((received) => received.length >= 40);
  });

  it('should refuse endpoint URLs that are not http(s) or that point inside the network', async () => {
    const strict = await startTestApp({ ...FAST_WEBHOOKS, WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'false' }, { sharedDatabaseUrl: t.databaseUrl });
    try {
      for (const url of ['ftp://hooks.example.com/x', 'http://127.0.0.1:8080/hooks', 'http://169.254.169.254/latest/meta-data', 'http://[::1]/x', 'http://user:pw@hooks.example.com/', 'not a url']) {
        const response = await request(strict.server).post('/api/v1/admin/webhook-endpoints').set('Authorization', admin()).send({ url }).expect(400);
        expect(response.body).toMatchObject({ type: '/problems/validation-failed', errors: [expect.objectContaining({ field: 'url' })] });
      }
      await request(strict.server).post('/api/v1/admin/webhook-endpoints').set('Authorization', admin()).send({ url: 'https://hooks.example.com/x', eventTypes: ['booking.nope'] }).expect(400);
      await request(strict.server).post('/api/v1/admin/webhook-endpoints').set('Authorization', as('mallory')).send({ url: 'https://hooks.example.com/x' }).expect(403);
    } finally {
      await strict.close();
    }
  });

  it('should list, rotate and delete endpoints; during a rotation both secrets sign', async () => {
    const hooks = await receiver();
    const endpoint = await register(t, hooks.url, ['match.created']);
    const listed = await request(t.server).get('/api/v1/admin/webhook-endpoints').set('Authorization', admin()).expect(200);
    expect((listed.body as { items: Array<Record<string, unknown>> }).items).toEqual([expect.objectContaining({ id: endpoint.id, url: hooks.url, eventTypes: ['match.created'] })]);
    expect(JSON.stringify(listed.body)).not.toContain(endpoint.secret);

    const rotated = (await request(t.server).post(`/api/v1/admin/webhook-endpoints/${endpoint.id}/rotate-secret`).set('Authorization', admin()).expect(200)).body as Endpoint & { previousSecretExpiresAt: string };
    expect(rotated.secret).not.toBe(endpoint.secret);
    expect(Date.parse(rotated.previousSecretExpiresAt)).toBeGreaterThan(Date.now());
    await createMatch(t, 1);
    await hooks.waitFor((received) => received.length >= 1);
    const [delivery] = hooks.received;
    expect(String(delivery!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(() => new Webhook(rotated.secret).verify(delivery!.body, headersOf(delivery!))).not.toThrow();
    expect(() => new Webhook(endpoint.secret).verify(delivery!.body, headersOf(delivery!))).not.toThrow();

    await request(t.server).delete(`/api/v1/admin/webhook-endpoints/${endpoint.id}`).set('Authorization', admin()).expect(204);
    await request(t.server).delete(`/api/v1/admin/webhook-endpoints/${endpoint.id}`).set('Authorization', admin()).expect(404);
    await request(t.server).get(`/api/v1/admin/webhook-endpoints/${endpoint.id}`).set('Authorization', admin()).expect(404);
  });

  it('should deliver each event once to each endpoint with two instances relaying at once', async () => {
    const second = await startTestApp(FAST_WEBHOOKS, { sharedDatabaseUrl: t.databaseUrl });
    try {
      const first = await receiver();
      const other = await receiver();
      await register(t, first.url, ['booking.confirmed']);
      await register(t, other.url, ['booking.confirmed']);
      const matchId = await createMatch(t, 1000);
      const booked = await Promise.all(
        Array.from({ length: 200 }, async (_, i) => ((await book(i % 2 === 0 ? t : second, matchId, `pair-${i % 20}`).expect(201)).body as { id: string }).id),
      );
      for (const hooks of [first, other]) {
        await hooks.waitFor((received) => received.length >= 200, 30_000, '200 deliveries');
        await new Promise((resolve) => setTimeout(resolve, 300));
        const ids = hooks.received.map((r) => String(r.headers['webhook-id']));
        expect(new Set(ids).size).toBe(200);
        expect(ids).toHaveLength(200); // no duplicate: no attempt failed, so none was repeated
        expect(hooks.events().map((event) => event.data.id as string).sort()).toEqual([...booked].sort());
      }
    } finally {
      await second.close();
    }
  });

  it('should deliver later, from another instance, an event whose instance was killed mid-delivery', async () => {
    const hooks = await receiver(0, (_request, n) => (n === 1 ? 'hang' : 200));
    // A database of its own, and an in-process instance that relays nothing: the service process is the only relay.
    const home = await startTestApp({ ...FAST_WEBHOOKS, WEBHOOK_RELAY_INTERVAL_MS: '0' });
    let service: ServiceProcess | undefined;
    try {
      await register(home, hooks.url, ['match.created']);
      service = await startServiceProcess({ ...FAST_WEBHOOKS, DATABASE_URL: home.databaseUrl, AUTH_JWT_SECRET: jwtSecretOf(home.config), WEBHOOK_TIMEOUT_MS: '60000' });
      await createMatch(home, 1, 'Killed mid-delivery');
      await hooks.waitFor((received) => received.length >= 1, 15_000, 'the first attempt');
      service.child.kill('SIGKILL');
      await service.exited;

      // Its lease (timeout + margin) runs out; another instance sends the event again.
      const rescuer = await startTestApp({ ...FAST_WEBHOOKS, WEBHOOK_TIMEOUT_MS: '60000' }, { sharedDatabaseUrl: home.databaseUrl });
      try {
        const [lease] = await rescuer.dataSource.query<[{ leased: boolean }]>(`SELECT leased_until > now() AS leased FROM webhook_deliveries`);
        expect(lease.leased).toBe(true); // the killed instance's claim still stands...
        await rescuer.dataSource.query(`UPDATE webhook_deliveries SET leased_until = now() WHERE status = 'pending'`); // ...until its 65 s are up
        await hooks.waitFor((received) => received.length >= 2, 15_000, 'the delivery after the kill');
        expect(hooks.received[1]!.headers['webhook-id']).toBe(hooks.received[0]!.headers['webhook-id']);
        expect(hooks.events()[1]).toMatchObject({ type: 'match.created', data: { title: 'Killed mid-delivery' } });
      } finally {
        await rescuer.close();
      }
    } finally {
      if (service) await stopServiceProcess(service);
      await home.close();
    }
  });

  it('should record the outcome of an attempt under way when its instance shuts down', async () => {
    // The receiver answers 200 only after the instance has begun to shut down.
    const hooks = await receiver(0, () => new Promise((resolve) => setTimeout(() => resolve(200), 1_000)));
    const home = await startTestApp({ ...FAST_WEBHOOKS, WEBHOOK_RELAY_INTERVAL_MS: '0' });
    try {
      await register(home, hooks.url, ['match.created']);
      const relay = await startTestApp({ ...FAST_WEBHOOKS, WEBHOOK_TIMEOUT_MS: '5000' }, { sharedDatabaseUrl: home.databaseUrl });
      await createMatch(home, 1, 'Delivered during a shutdown');
      await hooks.waitFor((received) => received.length >= 1, 15_000, 'the attempt');
      await relay.close();

      const deliveries = await home.dataSource.query<Array<{ status: string; attempts: number; last_status: number | null }>>(
        'SELECT status, attempts, last_status FROM webhook_deliveries',
      );
      expect(deliveries).toEqual([{ status: 'delivered', attempts: 1, last_status: 200 }]);
      expect(hooks.received).toHaveLength(1);
    } finally {
      await home.close();
    }
  });

  it('should make deliveries only for events committed after the endpoint was there, and report them', async () => {
    const hooks = await receiver();
    await untilDispatched(t, await createMatch(t, 1, 'Before the endpoint'));
    await register(t, hooks.url);
    await createMatch(t, 1, 'After the endpoint');
    await hooks.waitFor((received) => received.length >= 1);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(hooks.events().map((event) => event.data.title)).toEqual(['After the endpoint']);
    const metrics = await request(t.server).get('/metrics').expect(200);
    expect(metrics.text).toMatch(/webhook_deliveries_total\{outcome="delivered"\} \d+/);
    expect(metrics.text).toMatch(/events_committed_total\{type="match.created"\} \d+/);
  });

  async function waitForDelivery(app: TestApp, endpointId: string, status: string): Promise<{ id: string; attempts: number }> {
    const deadline = Date.now() + 15_000;
    for (;;) {
      const response = await request(app.server).get(`/api/v1/admin/webhook-endpoints/${endpointId}/deliveries`).query({ status }).set('Authorization', admin()).expect(200);
      const [item] = (response.body as { items: Array<{ id: string; attempts: number }> }).items;
      if (item) return item;
      if (Date.now() > deadline) throw new Error(`no ${status} delivery within 15 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
});
