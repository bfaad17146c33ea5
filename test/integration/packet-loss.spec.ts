import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import type { Client } from 'pg';
import { loadConfig } from '../../src/config/app-config';
import { buildDataSourceOptions } from '../../src/database/data-source-options';
import { runPendingMigrations } from '../../src/database/database-setup';
import { startEmbeddedPostgres, stopEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { bookingState, connectClient, insertMatch, report, rowLockIsFree, waitFor } from '../support/faults';
import { freePort } from '../support/ports';

const execFileAsync = promisify(execFile);
const quiet = { log: () => undefined };

const isRoot = process.getuid?.() === 0;
if (!isRoot) {
  process.stdout.write('[skipped] packet-loss.spec.ts needs root for "ip netns" and veth pairs; CI runs it as root\n');
}

/**
 * A real partition: the client sits in a network namespace of its own, joined to the root
 * namespace by a veth pair (10.200.N.0/30, addresses of this test only), and the link goes
 * down inside the namespace. Packets are lost, nothing is reset: only the server's TCP
 * keepalives and tcp_user_timeout, sent by the service's connection settings, can notice.
 */
(isRoot ? describe : describe.skip)('a packet-loss partition between a client holding a row lock and PostgreSQL', () => {
  const KEEPALIVES = { idle: 1, interval: 1, count: 2 };
  const TCP_USER_TIMEOUT_MS = 3_000;
  const suffix = String(process.pid % 100_000);
  const namespace = `bkpart${suffix}`;
  const hostIf = `bkp${suffix}h`;
  const nsIf = `bkp${suffix}n`;
  let subnet = 0;
  let hostAddress = '';
  let nsAddress = '';
  let dataDir = '';
  let port = 0;
  let observer: Client | undefined;
  let client: ChildProcess | undefined;
  let namespaceCreated = false;

  const ip = async (...args: string[]): Promise<string> => (await execFileAsync('ip', args)).stdout;
  const inNamespace = (...args: string[]): Promise<string> => ip('netns', 'exec', namespace, 'ip', ...args);

  beforeAll(async () => {
    try {
      await ip('netns', 'add', namespace);
      namespaceCreated = true;
    } catch (error) {
      throw new Error(`"ip netns add" failed although running as root; this test needs network namespaces: ${String(error)}`, { cause: error });
    }
    // A /30 in 10.200.0.0/16 that no interface of this machine uses yet.
    const used = await ip('-o', '-4', 'addr', 'show');
    const start = process.pid % 250;
    for (let i = 0; i < 250 && subnet === 0; i += 1) {
      const candidate = ((start + i) % 250) + 1;
      if (!used.includes(` 10.200.${candidate}.`)) subnet = candidate;
    }
    if (subnet === 0) throw new Error('no free 10.200.N.0/30 subnet for the test');
    hostAddress = `10.200.${subnet}.1`;
    nsAddress = `10.200.${subnet}.2`;
    await ip('link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf);
    await ip('link', 'set', nsIf, 'netns', namespace);
    await ip('addr', 'add', `${hostAddress}/30`, 'dev', hostIf);
    await ip('link', 'set', hostIf, 'up');
    await inNamespace('addr', 'add', `${nsAddress}/30`, 'dev', nsIf);
    await inNamespace('link', 'set', nsIf, 'up');
    await inNamespace('link', 'set', 'lo', 'up');

    dataDir = await mkdtemp(path.join(os.tmpdir(), 'match-booking-netns-pg-'));
    port = await freePort();
    const server = await startEmbeddedPostgres({ dataDir, port, database: 'booking' }, quiet, { extraListenAddresses: [hostAddress] });
    await runPendingMigrations(loadConfig({ NODE_ENV: 'test', DATABASE_URL: server.url }), server.url, quiet);
    observer = await connectClient(server.url);
    await appendFile(path.join(dataDir, 'pg_hba.conf'), `\nhost all all ${nsAddress}/32 trust\n`);
    await observer.query('SELECT pg_reload_conf()');
  }, 60_000);

  afterAll(async () => {
    if (client && client.exitCode === null) client.kill('SIGKILL');
    await observer?.end().catch(() => undefined);
    if (dataDir) {
      await stopEmbeddedPostgres(dataDir).catch(() => undefined);
      await rm(dataDir, { recursive: true, force: true });
    }
    // Deleting the namespace deletes the veth inside it, and so its peer too.
    if (namespaceCreated) await ip('netns', 'del', namespace).catch(() => undefined);
    await ip('link', 'del', hostIf).catch(() => undefined);
  });

  /** Starts a client in the namespace with the service's connection settings; it locks the match row, then `then` runs. */
  const lockFromNamespace = async (matchId: string, then: string): Promise<{ pid: number; settings: Record<string, string> }> => {
    const config = loadConfig({
      NODE_ENV: 'test',
      DATABASE_TCP_KEEPALIVES_IDLE_S: String(KEEPALIVES.idle),
      DATABASE_TCP_KEEPALIVES_INTERVAL_S: String(KEEPALIVES.interval),
      DATABASE_TCP_KEEPALIVES_COUNT: String(KEEPALIVES.count),
      DATABASE_TCP_USER_TIMEOUT_MS: String(TCP_USER_TIMEOUT_MS),
      DATABASE_KEEPALIVE_INITIAL_DELAY_MS: '1000',
    });
    const url = `postgres://postgres@${hostAddress}:${port}/booking`;
    const extra = buildDataSourceOptions(config.database, url, 'service').extra as { options: string; keepAliveInitialDelayMillis: number };
    const script = `
      const { Client } = require('pg');
      const client = new Client({
        connectionString: process.env.URL, options: process.env.PG_OPTIONS, application_name: 'netns-client',
        keepAlive: true, keepAliveInitialDelayMillis: Number(process.env.KEEPALIVE_DELAY), connectionTimeoutMillis: 5000,
      });
      client.on('error', (error) => process.stdout.write('error ' + error.message + '\\n'));
      (async () => {
        await client.connect();
        const { rows } = await client.query(\`SELECT pg_backend_pid() AS pid, current_setting('tcp_keepalives_idle') AS tcp_keepalives_idle,
          current_setting('tcp_keepalives_interval') AS tcp_keepalives_interval, current_setting('tcp_keepalives_count') AS tcp_keepalives_count,
          current_setting('tcp_user_timeout') AS tcp_user_timeout, current_setting('idle_in_transaction_session_timeout') AS idle_in_transaction_session_timeout\`);
        await client.query('BEGIN');
        await client.query('SELECT 1 FROM matches WHERE id = $1 FOR UPDATE', [process.env.MATCH]);
        await client.query('UPDATE matches SET booked_slots = booked_slots + 1 WHERE id = $1', [process.env.MATCH]);
        process.stdout.write('locked ' + JSON.stringify(rows[0]) + '\\n');
        ${then}
        setInterval(() => undefined, 1000);
      })().catch((error) => { process.stdout.write('failed ' + error.message + '\\n'); process.exit(1); });`;
    client = spawn('ip', ['netns', 'exec', namespace, process.execPath, '-e', script], {
      cwd: path.resolve(__dirname, '..', '..'),
      env: { PATH: process.env.PATH ?? '', URL: url, PG_OPTIONS: extra.options, KEEPALIVE_DELAY: String(extra.keepAliveInitialDelayMillis), MATCH: matchId },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    client.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    client.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const { value } = await waitFor(
      'the namespaced client to lock the row',
      () => {
        if (output.includes('failed ') || client?.exitCode !== null) throw new Error(`the namespaced client failed: ${output}`);
        const line = /locked (\{.*\})/.exec(output)?.[1];
        return line ? (JSON.parse(line) as Record<string, string>) : undefined;
      },
      { timeoutMs: 10_000 },
    );
    const { pid, ...settings } = value;
    return { pid: Number(pid), settings };
  };

  const expectLockFreedAfterLinkDown = async (matchId: string, pid: number, bound: number, label: string): Promise<void> => {
    expect(await rowLockIsFree(observer!, matchId)).toBe(false);
    await inNamespace('link', 'set', nsIf, 'down');
    const { elapsedMs } = await waitFor(`the server to free the row lock (${label})`, () => rowLockIsFree(observer!, matchId), {
      timeoutMs: bound,
      intervalMs: 100,
    });
    report(`packet loss (${label}): lock freed ${(elapsedMs / 1000).toFixed(2)} s after the link went down (bound ${bound} ms)`);
    // The server gave up on its own: the client, cut off, is still running and knows nothing.
    expect(client?.exitCode).toBeNull();
    const { rows } = await observer!.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid]);
    expect(rows).toEqual([]);
    // Its transaction was rolled back: the counter still equals the confirmed bookings (none).
    expect(await bookingState(observer!, matchId)).toEqual({ bookedSlots: 0, confirmedSlots: 0, confirmedIds: [] });
    client?.kill('SIGKILL');
    await inNamespace('link', 'set', nsIf, 'up');
  };

  it('should free the lock of an idle-in-transaction session within the TCP keepalive / tcp_user_timeout bound', async () => {
    const matchId = await insertMatch(observer!, 5);
    const { pid, settings } = await lockFromNamespace(matchId, '');
    // The settings come from buildDataSourceOptions; no idle_in_transaction timeout is what frees it here.
    expect(settings).toEqual({
      tcp_keepalives_idle: String(KEEPALIVES.idle),
      tcp_keepalives_interval: String(KEEPALIVES.interval),
      tcp_keepalives_count: String(KEEPALIVES.count),
      tcp_user_timeout: String(TCP_USER_TIMEOUT_MS),
      idle_in_transaction_session_timeout: '0',
    });
    const { rows } = await observer!.query<{ client_addr: string; state: string }>('SELECT client_addr, state FROM pg_stat_activity WHERE pid = $1', [pid]);
    expect(rows).toEqual([{ client_addr: nsAddress, state: 'idle in transaction' }]);

    // Idle: keepalive probes go unanswered; with tcp_user_timeout set, Linux drops the
    // connection once it has heard nothing for that long (or after count probes without it).
    const bound = Math.max(TCP_USER_TIMEOUT_MS, (KEEPALIVES.idle + KEEPALIVES.interval * KEEPALIVES.count) * 1000) + KEEPALIVES.interval * 1000 + 2_000;
    await expectLockFreedAfterLinkDown(matchId, pid, bound, 'idle session, keepalives');
  });

  it('should free the lock of a session whose reply cannot be delivered within tcp_user_timeout', async () => {
    const matchId = await insertMatch(observer!, 5);
    // After locking, the client asks for a large result that the server sends once the link is down.
    const { pid } = await lockFromNamespace(matchId, "await client.query(\"SELECT pg_sleep(1), repeat('x', 4000000)\");");
    const bound = 1_000 + TCP_USER_TIMEOUT_MS + 2_000;
    await expectLockFreedAfterLinkDown(matchId, pid, bound, 'reply in flight, tcp_user_timeout');
  });
});
