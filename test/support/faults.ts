import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import { NestLogger } from '../../src/observability/nest-logger';
import type { Server } from 'node:http';
import { connect, createServer, type Server as NetServer, type Socket } from 'node:net';
import { Client } from 'pg';
import { DataSource } from 'typeorm';
import { AppModule } from '../../src/app.module';
import { configureApp, createHttpAdapter } from '../../src/app.setup';
import { signAccessToken } from '../../src/auth/jwt';
import { type AppConfig, DEVELOPMENT_JWT_SECRET, loadConfig } from '../../src/config/app-config';
import { QUIET_WEBHOOKS } from './quiet-webhooks';

/** Helpers for the fault-injection tests: polls with deadlines, slow bookings, a freezable TCP proxy. */

export interface Waited<T> {
  value: T;
  elapsedMs: number;
}

/**
 * Calls `probe` until it returns something other than undefined/false, or fails after
 * `timeoutMs` with a message naming `what`. Resolves to the value and the time it took.
 */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  { timeoutMs, intervalMs = 50 }: { timeoutMs: number; intervalMs?: number },
): Promise<Waited<T>> {
  const started = performance.now();
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return { value, elapsedMs: performance.now() - started };
    } catch (error) {
      lastError = error;
    }
    if (performance.now() - started > timeoutMs) {
      const last = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last}`);
    }
    await sleep(intervalMs);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Writes a measured figure to the test output (console.log is linted out). */
export function report(line: string): void {
  process.stdout.write(`[measured] ${line}\n`);
}

export async function connectClient(url: string): Promise<Client> {
  const client = new Client({ connectionString: url, application_name: 'fault-test-observer' });
  await client.connect();
  return client;
}

export async function insertMatch(client: Client, capacity = 100): Promise<string> {
  const { rows } = await client.query<{ id: string }>(
    `INSERT INTO matches (title, starts_at, capacity) VALUES ('fault test', now() + interval '30 days', $1) RETURNING id`,
    [capacity],
  );
  return rows[0]!.id;
}

/**
 * A trigger that makes the booking INSERT of `customerId` sleep while the booking
 * transaction holds the match row lock (the INSERT runs after SELECT ... FOR UPDATE).
 * Other customers book at full speed.
 */
export async function installSlowBookingTrigger(client: Client, customerId: string, seconds: number): Promise<void> {
  await client.query(`
    CREATE OR REPLACE FUNCTION fault_test_slow_booking() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.customer_id = ${client.escapeLiteral(customerId)} THEN
        PERFORM pg_sleep(${Number(seconds)});
      END IF;
      RETURN NEW;
    END $$`);
  await client.query(`DROP TRIGGER IF EXISTS fault_test_slow_booking ON bookings`);
  await client.query(
    `CREATE TRIGGER fault_test_slow_booking BEFORE INSERT ON bookings FOR EACH ROW EXECUTE FUNCTION fault_test_slow_booking()`,
  );
}

export async function dropSlowBookingTrigger(client: Client): Promise<void> {
  await client.query(`DROP TRIGGER IF EXISTS fault_test_slow_booking ON bookings`);
}

/**
 * The pid of the service backend sleeping in the slow-booking trigger, once there is one. (Not
 * matched on the query text: pg_stat_activity cuts it at track_activity_query_size, and the
 * reservation statement is longer.)
 */
export async function sleepingBookingBackend(client: Client): Promise<number | undefined> {
  const { rows } = await client.query<{ pid: number }>(
    `SELECT pid FROM pg_stat_activity
      WHERE datname = current_database() AND wait_event = 'PgSleep' AND application_name = 'match-booking'`,
  );
  return rows[0]?.pid;
}

/** True when `client` can take the match row lock at once (then releases it): nobody holds it. */
export async function rowLockIsFree(client: Client, matchId: string): Promise<boolean> {
  await client.query('BEGIN');
  try {
    await client.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE NOWAIT', [matchId]);
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === '55P03') return false;
    throw error;
  } finally {
    await client.query('ROLLBACK');
  }
}

export interface BookingState {
  bookedSlots: number;
  confirmedSlots: number;
  confirmedIds: string[];
}

/** The counter and the confirmed bookings of a match, read straight from the database. */
export async function bookingState(client: Client, matchId: string): Promise<BookingState> {
  const { rows } = await client.query<{ booked_slots: number; confirmed_slots: string; confirmed_ids: string[] }>(
    `SELECT m.booked_slots,
            COALESCE(SUM(b.slots) FILTER (WHERE b.status = 'confirmed'), 0) AS confirmed_slots,
            COALESCE(array_agg(b.id::text) FILTER (WHERE b.status = 'confirmed'), '{}') AS confirmed_ids
       FROM matches m LEFT JOIN bookings b ON b.match_id = m.id
      WHERE m.id = $1 GROUP BY m.id`,
    [matchId],
  );
  const row = rows[0];
  if (!row) throw new Error(`match ${matchId} not found`);
  return { bookedSlots: row.booked_slots, confirmedSlots: Number(row.confirmed_slots), confirmedIds: row.confirmed_ids };
}

/** Sessions of the service's pool (application_name match-booking) on the current database. */
export async function serviceSessions(client: Client): Promise<Array<{ pid: number; state: string | null }>> {
  const { rows } = await client.query<{ pid: number; state: string | null }>(
    `SELECT pid, state FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'match-booking'`,
  );
  return rows;
}

/** Row and relation locks on the current database held by sessions other than `client`'s own. */
export async function locksHeldByOthers(client: Client): Promise<Array<{ pid: number; locktype: string; mode: string }>> {
  const { rows } = await client.query<{ pid: number; locktype: string; mode: string }>(
    `SELECT l.pid, l.locktype, l.mode FROM pg_locks l
       JOIN pg_database d ON d.oid = l.database
      WHERE d.datname = current_database() AND l.pid <> pg_backend_pid() AND l.granted`,
  );
  return rows;
}

export function bearer(customerId: string): string {
  return `Bearer ${signAccessToken({ sub: customerId, admin: false }, DEVELOPMENT_JWT_SECRET, 3600)}`;
}

export interface HttpResult {
  status: number;
  contentType: string | null;
  retryAfter: string | null;
  body: Record<string, unknown>;
  elapsedMs: number;
}

/** One booking request of a BookingLoad: its answer, or how it failed without one (a hang, a dropped connection). */
export interface LoadOutcome {
  startedAt: number;
  result?: HttpResult;
  failure?: string;
}

export interface BookingLoad {
  /** Every request so far, in the order they started. */
  outcomes: LoadOutcome[];
  /** Lets each client finish its request in flight, then resolves. */
  stop(): Promise<void>;
}

/**
 * `clients` clients booking one slot each of `matchId` one request after another, each as a
 * customer of its own (`${prefix}-<client>-<n>`), pausing `pauseAfterFailureMs` after an answer
 * other than 201, until stop().
 */
export function startBookingLoad(
  baseUrl: string,
  matchId: string,
  { clients, prefix, timeoutMs, pauseAfterFailureMs }: { clients: number; prefix: string; timeoutMs: number; pauseAfterFailureMs: number },
): BookingLoad {
  const outcomes: LoadOutcome[] = [];
  let running = true;
  const client = async (n: number): Promise<void> => {
    for (let i = 0; running; i += 1) {
      const outcome: LoadOutcome = { startedAt: performance.now() };
      outcomes.push(outcome);
      try {
        outcome.result = await bookOverHttp(baseUrl, matchId, `${prefix}-${n}-${i}`, timeoutMs);
      } catch (error) {
        outcome.failure = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      }
      if (outcome.result?.status !== 201) await sleep(pauseAfterFailureMs);
    }
  };
  const all = Promise.all(Array.from({ length: clients }, (_, n) => client(n)));
  return {
    outcomes,
    stop: async () => {
      running = false;
      await all;
    },
  };
}

/** POSTs a booking of one slot; rejects if no answer comes within `timeoutMs` (a hang). */
export async function bookOverHttp(baseUrl: string, matchId: string, customerId: string, timeoutMs = 30_000): Promise<HttpResult> {
  const started = performance.now();
  const response = await fetch(`${baseUrl}/api/v1/matches/${matchId}/bookings`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: bearer(customerId) },
    body: JSON.stringify({ slots: 1 }),
    signal: AbortSignal.timeout(timeoutMs),
  });
  const text = await response.text();
  return {
    status: response.status,
    contentType: response.headers.get('content-type'),
    retryAfter: response.headers.get('retry-after'),
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    elapsedMs: performance.now() - started,
  };
}

export async function getStatus(url: string, timeoutMs = 5_000): Promise<{ status: number; elapsedMs: number }> {
  const started = performance.now();
  const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
  await response.arrayBuffer();
  return { status: response.status, elapsedMs: performance.now() - started };
}

/** A TCP server on a free port of 127.0.0.1, for the test proxies. */
export async function listenOnLoopback(onConnection: (socket: Socket) => void): Promise<{ server: NetServer; port: number }> {
  const server = createServer(onConnection);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('proxy has no address');
  return { server, port: address.port };
}

/** `url` with its host and port replaced by those of a proxy on 127.0.0.1:`port`. */
export function routeThrough(port: number, url: string): string {
  const routed = new URL(url);
  routed.hostname = '127.0.0.1';
  routed.port = String(port);
  return routed.toString();
}

/**
 * A TCP proxy in front of PostgreSQL that can freeze: while frozen it forwards nothing in
 * either direction and closes nothing (a silent network partition: the peers' kernels keep
 * acknowledging, so only timeouts can notice). New connections wait for the thaw.
 */
export class FreezableProxy {
  private frozen = false;
  private readonly sockets = new Set<Socket>();
  private deferred: Array<() => void> = [];

  private constructor(
    private readonly server: NetServer,
    readonly port: number,
  ) {}

  static async start(targetHost: string, targetPort: number): Promise<FreezableProxy> {
    const holder: { proxy?: FreezableProxy } = {};
    const { server, port } = await listenOnLoopback((downstream) => holder.proxy?.accept(downstream, targetHost, targetPort));
    holder.proxy = new FreezableProxy(server, port);
    return holder.proxy;
  }

  /** `url` with its host and port replaced by the proxy's. */
  route(url: string): string {
    return routeThrough(this.port, url);
  }

  freeze(): void {
    this.frozen = true;
    for (const socket of this.sockets) socket.pause();
  }

  thaw(): void {
    this.frozen = false;
    for (const socket of this.sockets) socket.resume();
    const deferred = this.deferred;
    this.deferred = [];
    for (const action of deferred) action();
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private whenFlowing(action: () => void): void {
    if (this.frozen) this.deferred.push(action);
    else action();
  }

  private accept(downstream: Socket, targetHost: string, targetPort: number): void {
    this.track(downstream);
    if (this.frozen) downstream.pause();
    this.whenFlowing(() => {
      if (downstream.destroyed) return;
      const upstream = connect(targetPort, targetHost);
      this.track(upstream);
      this.pair(downstream, upstream);
      this.pair(upstream, downstream);
    });
  }

  private track(socket: Socket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.on('error', () => undefined); // reported through 'close' to the peer
  }

  private pair(from: Socket, to: Socket): void {
    from.on('data', (chunk: Buffer) => {
      if (this.frozen) {
        // Read before the pause took effect: hold it back until the thaw.
        from.pause();
        this.deferred.push(() => to.destroyed || to.write(chunk));
      } else if (!to.destroyed) {
        to.write(chunk);
      }
    });
    from.on('end', () => this.whenFlowing(() => to.end()));
    from.on('close', () => this.whenFlowing(() => to.destroy()));
  }
}

export interface InProcessApp {
  app: NestFastifyApplication;
  server: Server;
  baseUrl: string;
  dataSource: DataSource;
  config: AppConfig;
  /** The log lines the application wrote (JSON). */
  logs(): string;
  close(): Promise<void>;
}

/**
 * The real application in this process, like test-app.ts, but connecting to `connectUrl`
 * (e.g. through a FreezableProxy) and capturing its logs instead of printing them.
 */
export async function startInProcessApp(connectUrl: string, env: NodeJS.ProcessEnv = {}): Promise<InProcessApp> {
  const config = loadConfig({ NODE_ENV: 'test', ...QUIET_WEBHOOKS, ...env, DATABASE_URL: connectUrl });
  const lines: string[] = [];
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.register({ config, databaseUrl: connectUrl, logDestination: { write: (line: string) => lines.push(line) } })],
  }).compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(createHttpAdapter(config), { bodyParser: false, bufferLogs: true });
  app.useLogger(app.get(NestLogger));
  await configureApp(app, config);
  await app.listen(0, '127.0.0.1');
  const server: Server = app.getHttpServer();
  const address = server.address();
  if (typeof address !== 'object' || !address) throw new Error('app has no address');
  return {
    app,
    server,
    baseUrl: `http://127.0.0.1:${address.port}`,
    dataSource: app.get(DataSource),
    config,
    logs: () => lines.join(''),
    close: () => app.close(),
  };
}
