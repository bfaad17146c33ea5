import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { signAccessToken } from '../../src/auth/jwt';
import { DEVELOPMENT_JWT_SECRET } from '../../src/config/app-config';
import { type OtlpReceiver, type ReceivedSpan, startOtlpReceiver } from '../support/otlp-receiver';
import { sharedRedisUrl } from '../support/redis-server';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';
import { startWebhookReceiver, type WebhookReceiver } from '../support/webhook-receiver';

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_PRODUCER = 4;
const PRELOAD = path.resolve(__dirname, '..', 'support', 'loaded-modules-preload.ts');

/** Tracing on, exporting OTLP/JSON to `receiver` at once (100 ms batches), every trace sampled. */
function tracingTo(receiver: OtlpReceiver, protocol = 'http/json'): Record<string, string> {
  return {
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_EXPORTER_OTLP_PROTOCOL: protocol,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_SERVICE_NAME: 'match-booking-under-test',
    OTEL_TRACES_SAMPLER: 'parentbased_always_on',
  };
}

/** A W3C traceparent of a sampled trace that a load balancer started. */
function incomingTrace(): { traceId: string; parentSpanId: string; traceparent: string } {
  const traceId = randomBytes(16).toString('hex');
  const parentSpanId = randomBytes(8).toString('hex');
  return { traceId, parentSpanId, traceparent: `00-${traceId}-${parentSpanId}-01` };
}

function token(sub: string, admin = false): string {
  return signAccessToken({ sub, admin }, DEVELOPMENT_JWT_SECRET, 300);
}

function book(service: ServiceProcess, matchId: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${service.baseUrl}/api/v1/matches/${matchId}/bookings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token('alice')}`, ...headers },
    body: JSON.stringify({ slots: 1 }),
  });
}

function named(spans: ReceivedSpan[], name: string): ReceivedSpan[] {
  return spans.filter((span) => span.name === name);
}

function logLines(service: ServiceProcess): Array<Record<string, unknown>> {
  return service
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

/** Traces of real service processes, exported over OTLP/HTTP to a real receiver. */
describe('tracing', () => {
  let databaseUrl: string;
  let db: Client;
  let otlp: OtlpReceiver;
  let service: ServiceProcess | undefined;
  let hooks: WebhookReceiver | undefined;

  beforeAll(async () => {
    databaseUrl = await createTestDatabase();
    db = new Client({ connectionString: databaseUrl });
    await db.connect();
  });
  afterAll(async () => {
    await db.end();
    await dropTestDatabase(databaseUrl);
  });
  beforeEach(async () => {
    otlp = await startOtlpReceiver();
  });
  afterEach(async () => {
    if (service) await stopServiceProcess(service);
    service = undefined;
    await hooks?.close();
    hooks = undefined;
    await otlp.close();
  });

  async function insertMatch(capacity = 10): Promise<string> {
    const { rows } = await db.query<{ id: string }>(`INSERT INTO matches (title, starts_at, capacity) VALUES ('traced', now(), $1) RETURNING id`, [capacity]);
    return rows[0]!.id;
  }

  it('should continue an incoming traceparent through the HTTP server span, Redis, the booking queue and batch, the transaction and its SQL, with trace ids in the logs', async () => {
    // With Redis, every write's rate-limit counter is a Redis command in the request's trace.
    service = await startServiceProcess({ DATABASE_URL: databaseUrl, REDIS_URL: sharedRedisUrl(), ...tracingTo(otlp) });
    const matchId = await insertMatch();
    const { traceId, parentSpanId, traceparent } = incomingTrace();

    const response = await book(service, matchId, { traceparent, 'x-request-id': 'traced-booking-1' });
    expect(response.status).toBe(201);
    const booking = (await response.json()) as { id: string };

    const inTrace = (spans: ReceivedSpan[]) => spans.filter((span) => span.traceId === traceId);
    await otlp.waitFor((spans) => inTrace(spans).some((span) => span.name.startsWith('POST')) && named(inTrace(spans), 'booking.batch').length === 1, 15_000, 'the booking trace');
    await new Promise((resolve) => setTimeout(resolve, 300)); // the SQL spans end before their batch; give a late export time
    const trace = inTrace(otlp.spans);

    const server = trace.find((span) => span.kind === SPAN_KIND_SERVER)!;
    expect(server).toMatchObject({ parentSpanId, scope: '@opentelemetry/instrumentation-http' });
    expect(server.attributes['http.route'] ?? server.name).toContain('bookings');
    expect(server.resource['service.name']).toBe('match-booking-under-test');

    const [wait] = named(trace, 'booking.queue_wait');
    const [batch] = named(trace, 'booking.batch');
    expect(wait?.attributes).toMatchObject({ 'booking.match_id': matchId });
    expect(batch?.attributes).toMatchObject({ 'booking.batch.size': 1, 'booking.batch.matches': 1, 'booking.batch.succeeded': 1, 'booking.batch.failed': 0, 'booking.ids': [booking.id] });
    // A booking that ran alone: its batch is in its own trace, beside its wait, and the two link each other.
    expect(batch!.parentSpanId).toBe(wait!.parentSpanId);
    expect(batch!.links).toEqual([{ traceId, spanId: wait!.spanId }]);
    expect(wait!.links).toEqual([{ traceId, spanId: batch!.spanId }]);

    const [transaction] = named(trace, 'db.transaction');
    expect(transaction).toMatchObject({ parentSpanId: batch!.spanId, attributes: { 'db.transaction.name': 'book-slots', 'db.transaction.attempt': 1 } });
    expect(named(trace, 'db.pool.acquire')[0]?.parentSpanId).toBe(transaction!.spanId);
    const sql = trace.filter((span) => span.scope === '@opentelemetry/instrumentation-pg');
    const statements = sql.map((span) => String(span.attributes['db.query.text'] ?? span.attributes['db.statement'] ?? span.name));
    expect(statements.some((text) => text.includes('FOR UPDATE'))).toBe(true); // the row lock, and its wait
    expect(statements.some((text) => text.includes('WITH RECURSIVE'))).toBe(true); // the reservation statement
    expect(statements.some((text) => /^COMMIT/.test(text))).toBe(true);
    expect(sql.every((span) => span.traceId === traceId)).toBe(true);
    expect(trace.some((span) => span.scope === '@opentelemetry/instrumentation-ioredis')).toBe(true);

    // The request's log lines carry its trace.
    const accessLog = logLines(service).find((line) => (line.req as { id?: string } | undefined)?.id === 'traced-booking-1');
    expect(accessLog).toMatchObject({ trace_id: traceId, trace_flags: '01' });
  });

  it('should link a batch of several bookings to each of their traces, and each of them to the batch', async () => {
    service = await startServiceProcess({ DATABASE_URL: databaseUrl, DATABASE_LOCK_TIMEOUT_MS: '8000', ...tracingTo(otlp) });
    const matchId = await insertMatch();
    const holder = new Client({ connectionString: databaseUrl });
    await holder.connect();
    const traces = [incomingTrace(), incomingTrace(), incomingTrace()];
    try {
      // The first booking waits on the row lock held here; the two after it queue behind it and form one batch.
      await holder.query('BEGIN');
      await holder.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
      const first = book(service, matchId, { traceparent: traces[0]!.traceparent });
      await new Promise((resolve) => setTimeout(resolve, 300));
      // One after the other, so that traces[1] is the older request of the batch (sent together, they may arrive in either order).
      const second = book(service, matchId, { traceparent: traces[1]!.traceparent });
      await new Promise((resolve) => setTimeout(resolve, 150));
      const later = [second, book(service, matchId, { traceparent: traces[2]!.traceparent })];
      await new Promise((resolve) => setTimeout(resolve, 300));
      await holder.query('ROLLBACK');
      expect((await Promise.all([first, ...later])).map((response) => response.status)).toEqual([201, 201, 201]);
    } finally {
      await holder.end();
    }

    await otlp.waitFor((spans) => named(spans, 'booking.batch').length === 2 && named(spans, 'booking.queue_wait').length === 3, 15_000, 'two batches');
    const shared = named(otlp.spans, 'booking.batch').find((span) => span.attributes['booking.batch.size'] === 2)!;
    const waits = named(otlp.spans, 'booking.queue_wait').filter((span) => span.traceId !== traces[0]!.traceId);
    expect(waits.map((span) => span.traceId).sort()).toEqual([traces[1]!.traceId, traces[2]!.traceId].sort());
    // The batch lives in its oldest request's trace and links to every request's wait.
    expect(shared.traceId).toBe(traces[1]!.traceId);
    expect(shared.links).toEqual(expect.arrayContaining(waits.map((span) => ({ traceId: span.traceId, spanId: span.spanId }))));
    for (const wait of waits) expect(wait.links).toEqual([{ traceId: shared.traceId, spanId: shared.spanId }]);
    // The SQL that decided both bookings is in the batch's trace.
    expect(otlp.spans.some((span) => span.scope === '@opentelemetry/instrumentation-pg' && span.traceId === shared.traceId)).toBe(true);
  });

  it('should export over http/protobuf', async () => {
    service = await startServiceProcess({ DATABASE_URL: databaseUrl, ...tracingTo(otlp, 'http/protobuf') });

    expect((await book(service, await insertMatch(), { traceparent: incomingTrace().traceparent })).status).toBe(201);

    await otlp.waitFor((_spans, exports) => exports.length > 0, 15_000, 'a protobuf export');
    expect(otlp.exports.every((received) => received.contentType === 'application/x-protobuf' && received.bytes > 0)).toBe(true);
  });

  it('should export the spans still buffered when it shuts down', async () => {
    // Batches every minute: only the shutdown's flush exports the booking's spans in time.
    service = await startServiceProcess({ DATABASE_URL: databaseUrl, ...tracingTo(otlp), OTEL_BSP_SCHEDULE_DELAY: '60000', SHUTDOWN_READINESS_DELAY_MS: '0' });
    const { traceId, traceparent } = incomingTrace();
    expect((await book(service, await insertMatch(), { traceparent })).status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(otlp.spans).toEqual([]);

    service.child.kill('SIGTERM');
    await expect(service.exited).resolves.toEqual({ code: 0, signal: null });
    expect(named(otlp.spans, 'booking.batch').map((span) => span.traceId)).toEqual([traceId]);
  });

  it('should send webhook deliveries with the traceparent of their delivery span, which names the booking', async () => {
    hooks = await startWebhookReceiver();
    service = await startServiceProcess({
      DATABASE_URL: databaseUrl,
      ...tracingTo(otlp),
      WEBHOOK_ALLOW_PRIVATE_NETWORKS: 'true',
      WEBHOOK_DISPATCH_INTERVAL_MS: '50',
      WEBHOOK_RELAY_INTERVAL_MS: '50',
    });
    const registered = await fetch(`${service.baseUrl}/api/v1/admin/webhook-endpoints`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token('admin', true)}` },
      body: JSON.stringify({ url: hooks.url, eventTypes: ['booking.confirmed'] }),
    });
    expect(registered.status).toBe(201);

    const response = await book(service, await insertMatch(), { traceparent: incomingTrace().traceparent });
    const booking = (await response.json()) as { id: string };
    // The database is shared with the tests before: their bookings' events may be delivered too.
    const ofBooking = (body: string) => (JSON.parse(body) as { data: { id: string } }).data.id === booking.id;
    await hooks.waitFor((received) => received.some((webhook) => ofBooking(webhook.body)));
    const ofDelivery = (span: ReceivedSpan) => span.name === 'webhook.deliver' && span.attributes['webhook.resource_id'] === booking.id;
    const sql = (span: ReceivedSpan) => span.scope === '@opentelemetry/instrumentation-pg';
    await otlp.waitFor((spans) => spans.some(ofDelivery), 15_000, 'the delivery span');

    const deliver = otlp.spans.find(ofDelivery);
    expect(deliver).toMatchObject({
      kind: SPAN_KIND_PRODUCER,
      parentSpanId: undefined,
      attributes: { 'webhook.event_type': 'booking.confirmed', 'webhook.resource_id': booking.id, 'webhook.attempt': 1, 'webhook.outcome': 'delivered' },
    });
    const traceparent = String(hooks.received.find((webhook) => ofBooking(webhook.body))!.headers.traceparent);
    expect(traceparent).toMatch(new RegExp(`^00-${deliver!.traceId}-[0-9a-f]{16}-01$`));
    // Recording the attempt's outcome is in the delivery's trace.
    expect(otlp.spans.some((span) => sql(span) && span.traceId === deliver!.traceId)).toBe(true);
  });

  it('should export nothing, and not even load the SDK, without an OTLP endpoint', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'tracing-off-'));
    const modulesFile = path.join(directory, 'modules.json');
    try {
      service = await startServiceProcess({ DATABASE_URL: databaseUrl, NODE_OPTIONS: `--require ${PRELOAD}`, LOADED_MODULES_FILE: modulesFile, SHUTDOWN_READINESS_DELAY_MS: '0' });
      expect((await book(service, await insertMatch(), { traceparent: incomingTrace().traceparent, 'x-request-id': 'untraced' })).status).toBe(201);
      service.child.kill('SIGTERM');
      await expect(service.exited).resolves.toEqual({ code: 0, signal: null });

      const modules = JSON.parse(await readFile(modulesFile, 'utf8')) as string[];
      expect(modules.length).toBeGreaterThan(100);
      expect(modules.filter((file) => file.includes(`${path.sep}@opentelemetry${path.sep}`) && !file.includes(`${path.sep}@opentelemetry${path.sep}api${path.sep}`))).toEqual([]);
      expect(otlp.exports).toEqual([]);
      const accessLog = logLines(service).find((line) => (line.req as { id?: string } | undefined)?.id === 'untraced');
      expect(accessLog).toBeDefined();
      expect(accessLog).not.toHaveProperty('trace_id');
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });
});
