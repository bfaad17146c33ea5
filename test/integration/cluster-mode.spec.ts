import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { get } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { signAccessToken } from '../../src/auth/jwt';
import { DEVELOPMENT_JWT_SECRET } from '../../src/config/app-config';
import { SHUTDOWN_KILL_MARGIN_MS } from '../../src/lifecycle/cluster';
import { sharedRedisUrl } from '../support/redis-server';
import { runServiceProcessToExit, type ServiceProcess, startServiceProcess, stopServiceProcess } from '../support/service-process';
import { createTestDatabase, dropTestDatabase } from '../support/test-database';

/** WEB_CONCURRENCY=2: a real primary and its two workers, against the real PostgreSQL and Redis. */
describe('cluster mode (WEB_CONCURRENCY=2)', () => {
  let databaseUrl: string;
  let service: ServiceProcess | undefined;
  let holder: Client;

  beforeEach(async () => {
    databaseUrl = await createTestDatabase();
    holder = new Client({ connectionString: databaseUrl });
    await holder.connect();
  });
  afterEach(async () => {
    await holder.end();
    if (service) {
      const pids = [...workerPids(service).values()];
      await stopServiceProcess(service);
      // Workers exit when their primary's channel closes; make sure before dropping their database.
      for (const pid of pids) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
      service = undefined;
    }
    await dropTestDatabase(databaseUrl);
  });

  async function startCluster(env: Record<string, string> = {}, detached = false): Promise<ServiceProcess> {
    const started = await startServiceProcess(
      { WEB_CONCURRENCY: '2', DATABASE_URL: databaseUrl, REDIS_URL: sharedRedisUrl(), ...env },
      60_000,
      { detached },
    );
    service = started;
    await waitFor(async () => (await readiness(started)).body.details?.cluster?.workersListening === 2, 30_000, 'both workers listening');
    return started;
  }

  it('serves concurrent bookings from both workers without overbooking, and /metrics sums the workers whichever answers', async () => {
    const cluster = await startCluster();
    const matchId = await insertMatch(holder, 150);

    const statuses = await inParallel(200, 40, (index) => book(cluster, matchId, `customer-${index}`, `cluster-booking-${index}`).then((response) => response.status));
    expect(statuses.filter((status) => status === 201)).toHaveLength(150);
    expect(statuses.filter((status) => status === 409)).toHaveLength(50);

    // Which worker served each booking: its access-log line carries the request id and the worker id.
    const servedBy = await waitForAccessLines(cluster, 'cluster-booking-', 200);
    expect(new Set(servedBy.values()).size).toBe(2);

    const { rows } = await holder.query<{ booked_slots: number; capacity: number; confirmed: number }>(
      `SELECT m.booked_slots, m.capacity,
              (SELECT COALESCE(SUM(slots), 0)::int FROM bookings WHERE match_id = m.id AND status = 'confirmed') AS confirmed
         FROM matches m WHERE m.id = $1`,
      [matchId],
    );
    expect(rows[0]).toEqual({ booked_slots: 150, capacity: 150, confirmed: 150 });

    // A new connection per scrape: the primary hands connections out round-robin, so both workers answer some.
    for (let scrape = 0; scrape < 6; scrape += 1) {
      const metrics = await freshGet(`${cluster.baseUrl}/metrics`);
      expect(metrics.status).toBe(200);
      expect(sample(metrics.body, 'booking_outcomes_total{outcome="confirmed"}')).toBe(150);
      expect(sample(metrics.body, 'booking_outcomes_total{outcome="insufficient_slots"}')).toBe(50);
      expect(sample(metrics.body, 'cluster_workers_listening')).toBe(2);
      expect(sample(metrics.body, 'cluster_metrics_workers_answered')).toBe(2);
    }
  });

  it('on SIGTERM to the primary: readiness 503 from every worker, in-flight bookings of both workers complete, every process exits, exit code 0', async () => {
    const cluster = await startCluster({ DATABASE_LOCK_TIMEOUT_MS: '8000', SHUTDOWN_READINESS_DELAY_MS: '1500', SHUTDOWN_GRACE_PERIOD_MS: '8000' });
    const pids = workerPids(cluster);
    const matchId = await insertMatch(holder, 50);
    await holder.query('BEGIN');
    await holder.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [matchId]);
    // Each on a connection of its own, so that both workers get some; all wait on the row lock.
    const bookings = Array.from({ length: 6 }, (_, index) => book(cluster, matchId, `waiting-${index}`, `in-flight-${index}`, true));
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await waitForAccessLines(cluster, 'in-flight-', 0)).toEqual(new Map()); // all still waiting

    cluster.child.kill('SIGTERM');
    await new Promise((resolve) => setTimeout(resolve, 200));
    const answeredBy = new Set<number>();
    for (let probe = 0; probe < 4; probe += 1) {
      const ready = await freshGet(`${cluster.baseUrl}/health/ready`);
      expect(ready.status).toBe(503);
      const body = JSON.parse(ready.body) as ReadinessBody;
      expect(body.details?.lifecycle?.status).toBe('down');
      answeredBy.add(body.details!.cluster!.worker);
    }
    expect(answeredBy.size).toBe(2);
    await holder.query('ROLLBACK'); // the waiting bookings get the lock now, during the drain

    const statuses = await Promise.all(bookings.map(async (response) => (await response).status));
    expect(statuses).toEqual([201, 201, 201, 201, 201, 201]);
    expect(new Set((await waitForAccessLines(cluster, 'in-flight-', 6)).values()).size).toBe(2);
    await expect(cluster.exited).resolves.toEqual({ code: 0, signal: null });
    expect(cluster.output()).toContain('All workers stopped; exiting with code 0');
    expect(cluster.output()).not.toContain('exited unexpectedly');
    for (const pid of pids.values()) expect(isAlive(pid)).toBe(false);
  });

  it('stops cleanly when SIGTERM reaches the whole process group, as an orchestrator may send it', async () => {
    const cluster = await startCluster({ SHUTDOWN_READINESS_DELAY_MS: '0', SHUTDOWN_GRACE_PERIOD_MS: '5000' }, true);
    const pids = workerPids(cluster);

    process.kill(-cluster.child.pid!, 'SIGTERM');

    await expect(cluster.exited).resolves.toEqual({ code: 0, signal: null });
    expect(cluster.output()).not.toContain('exited unexpectedly');
    expect(workerPids(cluster).size).toBe(2); // no replacement forked
    for (const pid of pids.values()) expect(isAlive(pid)).toBe(false);
  });

  it('loads the application only in the workers: the primary serves nothing', async () => {
    const directory = await mkdtemp(path.join(os.tmpdir(), 'cluster-modules-'));
    try {
      const cluster = await startCluster({
        SHUTDOWN_READINESS_DELAY_MS: '0',
        NODE_OPTIONS: `--require ${path.resolve(__dirname, '..', 'support', 'loaded-modules-preload.ts')}`,
        LOADED_MODULES_FILE: path.join(directory, 'modules-%p.json'),
      });
      const workers = [...workerPids(cluster).values()];
      cluster.child.kill('SIGTERM');
      await expect(cluster.exited).resolves.toEqual({ code: 0, signal: null });

      const loadedBy = async (pid: number) => JSON.parse(await readFile(path.join(directory, `modules-${pid}.json`), 'utf8')) as string[];
      const appModule = path.join('dist', 'src', 'app.module.js');
      const fastify = `${path.sep}node_modules${path.sep}fastify${path.sep}`;
      const primary = await loadedBy(cluster.child.pid!);
      expect(primary.filter((file) => file.endsWith(appModule) || file.includes(fastify))).toEqual([]);
      for (const pid of workers) {
        const worker = await loadedBy(pid);
        expect(worker.some((file) => file.endsWith(appModule))).toBe(true);
        expect(worker.some((file) => file.includes(fastify))).toBe(true);
      }
    } finally {
      await rm(directory, { recursive: true, force: true });
    }
  });

  it('replaces a worker killed with SIGKILL, and the service keeps answering', async () => {
    const cluster = await startCluster();
    const matchId = await insertMatch(holder, 1000);
    const victimId = 1;
    const victimPid = workerPids(cluster).get(victimId)!;

    process.kill(victimPid, 'SIGKILL');
    await waitFor(() => cluster.output().includes(`Worker ${victimId} exited unexpectedly with signal SIGKILL; starting a replacement now`), 10_000, 'the crash logged');
    // The other worker serves meanwhile (new connections: a kept-alive one may have gone to the killed worker).
    const during = await inParallel(20, 5, (index) => book(cluster, matchId, `during-${index}`, `during-${index}`, true).then((response) => response.status));
    expect(during).toEqual(Array(20).fill(201));

    await waitFor(async () => (await readiness(cluster)).body.details?.cluster?.workersListening === 2, 30_000, 'a replacement listening');
    const replacements = [...workerPids(cluster).keys()].filter((id) => id > 2);
    expect(replacements).toEqual([3]);
    const after = await inParallel(40, 10, (index) => book(cluster, matchId, `after-${index}`, `after-${index}`, true).then((response) => response.status));
    expect(after).toEqual(Array(40).fill(201));
    expect(new Set((await waitForAccessLines(cluster, 'after-', 40)).values())).toContain(3);
    expect(sample((await freshGet(`${cluster.baseUrl}/metrics`)).body, 'cluster_worker_restarts_total')).toBe(1);
  });

  it('kills a worker that outlives the grace period plus the margin, and exits 1', async () => {
    const cluster = await startCluster({ SHUTDOWN_READINESS_DELAY_MS: '0', SHUTDOWN_GRACE_PERIOD_MS: '1000' });
    const pids = workerPids(cluster);
    // A stopped process runs no signal handler: it stands for a worker stuck past its own grace period.
    process.kill(pids.get(2)!, 'SIGSTOP');
    const signalledAt = Date.now();

    cluster.child.kill('SIGTERM');

    await expect(cluster.exited).resolves.toEqual({ code: 1, signal: null });
    expect(Date.now() - signalledAt).toBeGreaterThanOrEqual(1_000 + SHUTDOWN_KILL_MARGIN_MS);
    expect(cluster.output()).toContain(`Worker 2 still running ${1_000 + SHUTDOWN_KILL_MARGIN_MS} ms after the signal; killing it`);
    expect(cluster.output()).toContain('Worker 1 stopped (code 0)');
    expect(cluster.output()).toContain('Worker 2 stopped with signal SIGKILL');
    expect(cluster.output()).toContain('All workers stopped; exiting with code 1');
    for (const pid of pids.values()) expect(isAlive(pid)).toBe(false);
  });

  it('refuses a bad configuration in the primary, once, before forking any worker', async () => {
    const refused = await runServiceProcessToExit({ WEB_CONCURRENCY: '2', DATABASE_URL: databaseUrl, DATABASE_POOL_MAX: '0' });
    expect(refused.code).toBe(1);
    expect(refused.output.match(/DATABASE_POOL_MAX must not be less than 1/g)).toHaveLength(1);
    expect(refused.output).not.toContain('forked');

    const badCount = await runServiceProcessToExit({ WEB_CONCURRENCY: 'many', DATABASE_URL: databaseUrl });
    expect(badCount.code).toBe(1);
    expect(badCount.output).toContain('WEB_CONCURRENCY must be a whole number of worker processes from 1 (one process, no cluster) to 64, not \\"many\\"');
  });
});

interface ReadinessBody {
  details?: { lifecycle?: { status: string }; cluster?: { worker: number; workersListening: number; workersWanted: number } };
}

async function readiness(service: ServiceProcess): Promise<{ status: number; body: ReadinessBody }> {
  const response = await freshGet(`${service.baseUrl}/health/ready`);
  return { status: response.status, body: JSON.parse(response.body) as ReadinessBody };
}

/** GET on a connection of its own (no keep-alive), so that the primary hands it to the next worker. */
function freshGet(url: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    get(url, { agent: false }, (response) => {
      let body = '';
      response.setEncoding('utf8');
      response.on('data', (chunk: string) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body }));
      response.on('error', reject);
    }).on('error', reject);
  });
}

function book(service: ServiceProcess, matchId: string, customer: string, requestId: string, ownConnection = false): Promise<Response> {
  const token = signAccessToken({ sub: customer, admin: false }, DEVELOPMENT_JWT_SECRET, 60);
  return fetch(`${service.baseUrl}/api/v1/matches/${matchId}/bookings`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      authorization: `Bearer ${token}`,
      'x-request-id': requestId,
      // A connection of its own, so that the primary hands it to the next worker.
      ...(ownConnection ? { connection: 'close' } : {}),
    },
    body: JSON.stringify({ slots: 1 }),
  });
}

async function insertMatch(client: Client, capacity: number): Promise<string> {
  const { rows } = await client.query<{ id: string }>(`INSERT INTO matches (title, starts_at, capacity) VALUES ('m', now(), $1) RETURNING id`, [capacity]);
  return rows[0]!.id;
}

/** Runs `count` tasks, at most `concurrency` at once; their results in order. */
async function inParallel<T>(count: number, concurrency: number, task: (index: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array<T>(count);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const index = next++;
        results[index] = await task(index);
      }
    }),
  );
  return results;
}

interface LogLine {
  msg?: string;
  worker?: number;
  pid?: number;
  req?: { id?: string };
}

function logLines(service: ServiceProcess): LogLine[] {
  return service
    .output()
    .split('\n')
    .flatMap((line) => {
      try {
        return [JSON.parse(line) as LogLine];
      } catch {
        return []; // a partial last line
      }
    });
}

/** Worker id → pid, from the primary's "Worker N forked (pid P)" lines. */
function workerPids(service: ServiceProcess): Map<number, number> {
  const pids = new Map<number, number>();
  for (const line of logLines(service)) {
    if (line.msg?.startsWith('Worker ') && line.msg.includes(' forked ') && line.worker !== undefined && line.pid !== undefined) pids.set(line.worker, line.pid);
  }
  return pids;
}

/** Request id → worker id of the access-log lines whose request id starts with `prefix`, once there are `count` of them. */
async function waitForAccessLines(service: ServiceProcess, prefix: string, count: number): Promise<Map<string, number>> {
  const read = (): Map<string, number> => {
    const servedBy = new Map<string, number>();
    for (const line of logLines(service)) {
      const id = line.req?.id;
      if (line.msg === 'request completed' && id?.startsWith(prefix) && line.worker !== undefined) servedBy.set(id, line.worker);
    }
    return servedBy;
  };
  await waitFor(() => read().size >= count, 5_000, `${count} access-log lines of ${prefix}*`);
  const servedBy = read();
  expect(servedBy.size).toBe(count);
  return servedBy;
}

/** The value of one sample line of a Prometheus text exposition. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false; // ESRCH: no such process
  }
}

async function waitFor(condition: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await condition()) return;
    } catch {
      // not answering yet: try again until the deadline
    }
    if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
