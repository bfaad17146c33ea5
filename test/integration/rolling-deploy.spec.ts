import type { ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { signAccessToken } from '../../src/auth/jwt';
import { DEVELOPMENT_JWT_SECRET } from '../../src/config/app-config';
import { requireHaproxy, spawnHaproxy } from '../support/haproxy';
import { freePort } from '../support/ports';
import { type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';

/**
 * A rolling deploy behind HAProxy, the way production runs it: two instances ("blue") behind
 * a load balancer that health-checks /health/ready and reuses its backend connections. Under
 * continuous booking load over keep-alive connections, each blue instance in turn is replaced
 * by a fresh one ("green"): start green, wait until HAProxy sees it healthy, SIGTERM the old
 * one. Not one client request may fail, and the database must hold exactly what was confirmed.
 */

const CLIENTS = 12; // concurrent keep-alive fetch loops
const MATCHES = 3; // CLIENTS / MATCHES bookings contend for each match row lock
const CAPACITY = 1_000_000; // ample: every booking must succeed
const MAX_REQUESTS = 100_000; // bounds on the load, whatever happens
const MAX_LOAD_MS = 30_000;
const REQUEST_TIMEOUT_MS = 10_000;

// Health checks every 250 ms, every 100 ms after a first failure, 2 failures to go down and 2
// successes to come up: an instance whose readiness turns 503 leaves the pool within ~0.5 s,
// well inside its readiness delay below.
const CHECK_INTER_MS = 250;
const CHECK_FASTINTER_MS = 100;
const CHECK_FALL = 2;
const CHECK_RISE = 2;

/** Instances are configured through environment variables only, as in production. */
const SERVICE_ENV = {
  SHUTDOWN_READINESS_DELAY_MS: '2000', // several times what HAProxy needs to notice, for loaded CI machines
  SHUTDOWN_GRACE_PERIOD_MS: '5000',
  DATABASE_POOL_MAX: '8', // up to four instances share the test server's max_connections with other test files
  LOG_LEVEL: 'warn', // no access log line per booking; shutdown problems are logged at error
};

const BACKEND = 'booking';

interface Outcome {
  client: number;
  matchId: string;
  startedAt: number;
  endedAt: number;
  status?: number;
  bookingId?: string;
  error?: string;
  body?: string;
}

type Stats = Map<string, Record<string, string>>;

/** One line of HAProxy's "show stat", by "proxy/server". */
function stat(stats: Stats, key: string): Record<string, string> {
  const record = stats.get(key);
  if (!record) throw new Error(`HAProxy reports no ${key}`);
  return record;
}

describe('rolling deploy behind HAProxy', () => {
  let databaseUrl: string;
  let workDir: string;
  let haproxy: HaproxyProcess | undefined;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    requireHaproxy();
    databaseUrl = await createTestDatabase();
    workDir = await mkdtemp(path.join(os.tmpdir(), 'rolling-deploy-'));
  });

  afterAll(async () => {
    await haproxy?.stop();
    await Promise.all(services.map((service) => stopServiceProcess(service)));
    if (workDir) await rm(workDir, { recursive: true, force: true });
    if (databaseUrl) await dropTestDatabase(databaseUrl);
  });

  async function startInstance(): Promise<ServiceProcess> {
    const service = await startServiceProcess({ DATABASE_URL: databaseUrl, ...SERVICE_ENV });
    services.push(service);
    return service;
  }

  it('should replace both instances under load without one failed request, overbooking or lost booking', async () => {
    const matchIds = await insertMatches(databaseUrl, MATCHES, CAPACITY);
    const blue = await Promise.all([startInstance(), startInstance()]);
    haproxy = await startHaproxy(workDir, blue.map((service) => service.port));
    const lb = haproxy;
    await lb.waitForServer('blue-1', 'UP');
    await lb.waitForServer('blue-2', 'UP');

    // The load: bounded sequential loops, no client retries; every answer is recorded.
    const outcomes: Outcome[] = [];
    let stopLoad = false;
    const loadDeadline = Date.now() + MAX_LOAD_MS;
    const loops = Array.from({ length: CLIENTS }, async (_, client) => {
      const token = signAccessToken({ sub: `client-${client}`, admin: false }, DEVELOPMENT_JWT_SECRET, 600);
      const matchId = matchIds[client % MATCHES]!;
      while (!stopLoad && outcomes.length < MAX_REQUESTS && Date.now() < loadDeadline) {
        outcomes.push(await bookOne(lb.baseUrl, token, client, matchId));
      }
    });
    const load = Promise.all(loops);

    // The deploy, one instance at a time.
    let deployStartedAt = 0;
    let deployEndedAt = 0;
    let oldExits: Array<{ code: number | null; signal: NodeJS.Signals | null }>;
    try {
      await sleep(500);
      deployStartedAt = Date.now();
      const exits: Array<Promise<{ code: number | null; signal: NodeJS.Signals | null }>> = [];
      for (const [index, old] of blue.entries()) {
        const slot = `green-${index + 1}`;
        const green = await startInstance();
        // Like a Kubernetes endpoint, the slot gets an instance that is ready already: leaving
        // maintenance puts it UP at once. Then wait until HAProxy's own health check has passed too.
        await lb.command(`set server ${BACKEND}/${slot} addr 127.0.0.1 port ${green.port}`);
        await lb.command(`set server ${BACKEND}/${slot} state ready`);
        await lb.waitForServer(slot, 'UP');
        old.child.kill('SIGTERM');
        exits.push(old.exited);
      }
      oldExits = await Promise.all(exits);
      deployEndedAt = Date.now();
      await sleep(500);
    } finally {
      stopLoad = true;
      await load;
    }
    const stats = await lb.stats();

    const failures = outcomes.filter((outcome) => outcome.status !== 201);
    const servedDuringDeploy = outcomes.filter(
      (outcome) => outcome.status === 201 && outcome.endedAt >= deployStartedAt && outcome.startedAt <= deployEndedAt,
    ).length;
    const frontend = stat(stats, 'main/FRONTEND');
    const backend = stat(stats, `${BACKEND}/BACKEND`);
    const servers = ['blue-1', 'blue-2', 'green-1', 'green-2'].map((name) => ({ name, stats: stat(stats, `${BACKEND}/${name}`) }));
    process.stdout.write(
      `rolling deploy: ${outcomes.length} booking request(s) in total, ${servedDuringDeploy} served during the ` +
        `${deployEndedAt - deployStartedAt} ms deploy, ${failures.length} failed; ` +
        `${frontend.conn_tot} client connection(s) to HAProxy; per server (2xx, connections opened, reused): ` +
        `${servers.map((s) => `${s.name} ${s.stats.hrsp_2xx}/${s.stats.connect}/${s.stats.reuse}`).join(', ')}\n`,
    );

    // Zero failed requests: every one answered 201 (no 5xx, no reset, no timeout).
    expect({ failures: failures.slice(0, 10), haproxyLog: failures.length > 0 ? lb.output() : '' }).toEqual({
      failures: [],
      haproxyLog: '',
    });
    // Nor did HAProxy have to hide a failure: it never retried or redispatched a request, and no
    // instance refused a connection or broke one off. The readiness delay took each old instance
    // out of the pool before it stopped accepting. (With SHUTDOWN_READINESS_DELAY_MS=0 the
    // clients still see no error, but only because HAProxy redispatches refused connections.)
    expect({ retries: backend.wretr, redispatches: backend.wredis, connectErrors: backend.econ, responseErrors: backend.eresp }).toEqual({
      retries: '0',
      redispatches: '0',
      connectErrors: '0',
      responseErrors: '0',
    });
    expect(outcomes.length).toBeLessThan(MAX_REQUESTS); // the deploy ran inside the load, not after it
    expect(servedDuringDeploy).toBeGreaterThan(100);
    // Every old process drained and exited 0.
    expect({ exits: oldExits, output: oldExits.some((exit) => exit.code !== 0) ? blue.map((s) => s.output()) : [] }).toEqual({
      exits: [
        { code: 0, signal: null },
        { code: 0, signal: null },
      ],
      output: [],
    });
    // Each of the four instances served bookings; keep-alive was used on both sides of HAProxy.
    for (const server of servers) expect(Number(server.stats.hrsp_2xx)).toBeGreaterThan(0);
    expect(Number(frontend.req_tot) / Number(frontend.conn_tot)).toBeGreaterThan(5);
    expect(servers.reduce((sum, server) => sum + Number(server.stats.reuse), 0)).toBeGreaterThan(0);

    // No overbooking and no lost booking: the counters equal the confirmed bookings, which are
    // exactly the 201 answers, row for row.
    const db = new Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const { rows: counters } = await db.query<{ id: string; capacity: number; booked_slots: number; confirmed_slots: string }>(
        `SELECT m.id, m.capacity, m.booked_slots,
                COALESCE(SUM(b.slots) FILTER (WHERE b.status = 'confirmed'), 0) AS confirmed_slots
           FROM matches m LEFT JOIN bookings b ON b.match_id = m.id
          WHERE m.id = ANY($1::uuid[])
          GROUP BY m.id`,
        [matchIds],
      );
      const answered = new Map(matchIds.map((id) => [id, outcomes.filter((outcome) => outcome.matchId === id).length]));
      expect(
        counters.map((row) => ({ id: row.id, booked: row.booked_slots, confirmed: Number(row.confirmed_slots), ok: row.booked_slots <= row.capacity })),
      ).toEqual(
        expect.arrayContaining(matchIds.map((id) => ({ id, booked: answered.get(id), confirmed: answered.get(id), ok: true }))),
      );
      expect(counters).toHaveLength(MATCHES);

      const { rows } = await db.query<{ id: string; match_id: string; status: string }>(
        `SELECT id, match_id, status FROM bookings WHERE match_id = ANY($1::uuid[])`,
        [matchIds],
      );
      const stored = new Map(rows.map((row) => [row.id, row]));
      const missing = outcomes.filter((outcome) => {
        const row = outcome.bookingId ? stored.get(outcome.bookingId) : undefined;
        return row?.match_id !== outcome.matchId || row.status !== 'confirmed';
      });
      expect(missing).toEqual([]);
      expect(rows).toHaveLength(outcomes.length);
    } finally {
      await db.end();
    }
  }, 45_000);
});

/** One booking; no retry of any kind. Any answer but 201, or no answer, is a failure. */
async function bookOne(baseUrl: string, token: string, client: number, matchId: string): Promise<Outcome> {
  const startedAt = Date.now();
  try {
    const response = await fetch(`${baseUrl}/api/v1/matches/${matchId}/bookings`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ slots: 1 }),
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    const body = await response.text();
    const outcome: Outcome = { client, matchId, startedAt, endedAt: Date.now(), status: response.status };
    if (response.status === 201) outcome.bookingId = (JSON.parse(body) as { id: string }).id;
    else outcome.body = body;
    return outcome;
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
    return { client, matchId, startedAt, endedAt: Date.now(), error: `${String(error)}${cause}` };
  }
}

async function insertMatches(url: string, count: number, capacity: number): Promise<string[]> {
  const db = new Client({ connectionString: url });
  await db.connect();
  try {
    const { rows } = await db.query<{ id: string }>(
      `INSERT INTO matches (title, starts_at, capacity)
       SELECT 'Rolling deploy ' || n, now() + interval '1 day', $2 FROM generate_series(1, $1::int) AS n
       RETURNING id`,
      [count, capacity],
    );
    return rows.map((row) => row.id);
  } finally {
    await db.end();
  }
}

interface HaproxyProcess {
  baseUrl: string;
  child: ChildProcess;
  output(): string;
  command(command: string): Promise<string>;
  stats(): Promise<Stats>;
  waitForServer(server: string, status: 'UP', timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The load balancer configuration of a real deployment, scaled down in time. The two "green"
 * slots start in maintenance; the deploy points them at the new instances through the runtime
 * API, the way service discovery or the Data Plane API does.
 */
function haproxyConfig(port: number, socket: string, bluePorts: number[]): string {
  return `
global
  stats socket ${socket} mode 600 level admin
  log stdout format raw local0

defaults
  mode http
  log global
  option httplog
  # only errors and server state changes reach the log
  option dontlog-normal
  option log-health-checks
  timeout connect 2s
  timeout client 30s
  timeout server 10s
  timeout http-request 5s
  timeout http-keep-alive 10s
  timeout check 1s
  # Retry only connections that could not be established (refused, timed out): the request has
  # not reached any instance then, so even a POST is safe to send again, to another instance
  # (redispatch). A request that was sent is never replayed by HAProxy (no L7 retries): a
  # booking must not be made twice.
  retries 3
  retry-on conn-failure
  option redispatch

frontend main
  bind 127.0.0.1:${port}
  option forwardfor
  default_backend ${BACKEND}

backend ${BACKEND}
  balance roundrobin
  # Keep-alive to the instances: idle server connections are reused by later requests, also
  # of other client connections (safe: never for the first request of a client connection).
  http-reuse safe
  option httpchk
  http-check send meth GET uri /health/ready ver HTTP/1.1 hdr Host haproxy
  http-check expect status 200
  default-server check inter ${CHECK_INTER_MS}ms fastinter ${CHECK_FASTINTER_MS}ms fall ${CHECK_FALL} rise ${CHECK_RISE}
  server blue-1 127.0.0.1:${bluePorts[0]}
  server blue-2 127.0.0.1:${bluePorts[1]}
  server green-1 127.0.0.1:9 disabled
  server green-2 127.0.0.1:9 disabled
`;
}

async function startHaproxy(dir: string, bluePorts: number[]): Promise<HaproxyProcess> {
  const port = await freePort();
  const socket = path.join(dir, 'haproxy.sock');
  const { child, output, stop } = await spawnHaproxy(dir, haproxyConfig(port, socket, bluePorts));

  const command = (line: string): Promise<string> =>
    new Promise((resolve, reject) => {
      const connection = createConnection(socket);
      let answer = '';
      connection.setEncoding('utf8');
      connection.on('data', (chunk: string) => (answer += chunk));
      connection.once('end', () => resolve(answer));
      connection.once('error', reject);
      connection.end(`${line}\n`);
    });
  const stats = async (): Promise<Stats> => {
    const [header, ...lines] = (await command('show stat')).trim().split('\n');
    const fields = (header ?? '').replace(/^# /, '').split(',');
    return new Map(
      lines.map((line) => {
        const record = Object.fromEntries(line.split(',').map((value, index) => [fields[index] ?? String(index), value]));
        return [`${record.pxname}/${record.svname}`, record];
      }),
    );
  };
  const haproxy: HaproxyProcess = {
    baseUrl: `http://127.0.0.1:${port}`,
    child,
    output,
    command,
    stats,
    async waitForServer(server, status, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      let last: Record<string, string> | undefined;
      while (Date.now() < deadline) {
        last = (await stats()).get(`${BACKEND}/${server}`);
        // UP after a passed check, not merely "not yet checked"
        if (last?.status === status && last.check_status === 'L7OK') return;
        await sleep(50);
      }
      throw new Error(`HAProxy never saw ${server} ${status}; last: ${last?.status} ${last?.check_status}\n${output()}`);
    },
    stop,
  };

  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await stats();
      return haproxy;
    } catch (error) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await haproxy.stop();
        throw new Error(`haproxy did not start:\n${output()}`, { cause: error });
      }
      await sleep(50);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
