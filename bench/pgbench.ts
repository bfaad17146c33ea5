import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Pool } from 'pg';
import { HOT_MATCH_VARIABLE, PGBENCH_SESSION_OPTIONS, type PgbenchWorkload, pgbenchScript } from './pgbench-script';
import { type LatencySummary, round, summarizeLatencies } from './stats';

/** pgbench threads: more would only compete with PostgreSQL for the machine's few cores. */
export const PGBENCH_MAX_THREADS = 2;

export interface PgbenchSpec {
  databaseUrl: string;
  workload: PgbenchWorkload;
  clients: number;
  durationSeconds: number;
  /** The match number the hot workload books (see pgbench-script.ts). */
  hotMatch?: number;
}

export interface PgbenchResult {
  workload: PgbenchWorkload;
  clients: number;
  threads: number;
  durationSeconds: number;
  /** Committed transactions, as pgbench reports them. */
  transactions: number;
  failedTransactions: number;
  /** pgbench's tps, without the initial connection time. */
  tps: number;
  /** From the per-transaction log (--log), in milliseconds. */
  latency: LatencySummary;
  /** Clients pgbench aborted after an error (e.g. a lock timeout), and the first error lines. */
  abortedClients: number;
  errorLines: string[];
  exitCode: number | null;
}

/** `pgbench --version`, or null when pgbench is not on the PATH. */
export async function findPgbench(): Promise<string | null> {
  try {
    const { code, stdout } = await runProcess('pgbench', ['--version']);
    return code === 0 ? stdout.trim() : null;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new Error('Cannot run "pgbench --version"', { cause: error });
  }
}

/**
 * How many more connections the server accepts now. pgbench opens one per client, and a
 * server's max_connections (100 by default) can be below the bench's highest concurrency; the
 * service needs only its pool, whatever the number of HTTP connections.
 */
export async function freeConnections(db: Pool): Promise<{ free: number; maxConnections: number }> {
  const { rows } = await db.query<{ free: number; max_connections: number }>(`
    SELECT current_setting('max_connections')::int
           - CASE WHEN (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN 0
                  ELSE current_setting('superuser_reserved_connections')::int END
           - (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int AS free,
           current_setting('max_connections')::int AS max_connections`);
  const row = rows[0]!;
  return { free: row.free, maxConnections: row.max_connections };
}

/** pgbench's -M: the service prepares its reservation statement once per connection. */
export const PGBENCH_QUERY_MODE = 'prepared';

/**
 * Runs pgbench with the workload's script: -n (the bench's tables are not pgbench's, nothing to
 * vacuum), -M prepared (the service prepares its reservation statement once per connection), the
 * service's session settings, and a per-transaction log in a temporary directory for exact
 * latency percentiles.
 */
export async function runPgbench(spec: PgbenchSpec): Promise<PgbenchResult> {
  const directory = await mkdtemp(path.join(os.tmpdir(), 'match-booking-pgbench-'));
  try {
    const scriptFile = path.join(directory, `${spec.workload}.sql`);
    await writeFile(scriptFile, pgbenchScript(spec.workload));
    const threads = Math.min(PGBENCH_MAX_THREADS, spec.clients);
    const args = [
      '-n',
      '-M', PGBENCH_QUERY_MODE,
      '-f', scriptFile,
      '-T', String(spec.durationSeconds),
      '-c', String(spec.clients),
      '-j', String(threads),
      '--log', `--log-prefix=${path.join(directory, 'transactions')}`,
      ...(spec.hotMatch !== undefined ? ['-D', `${HOT_MATCH_VARIABLE}=${spec.hotMatch}`] : []),
      spec.databaseUrl,
    ];
    const { code, stdout, stderr } = await runProcess('pgbench', args, { PGOPTIONS: PGBENCH_SESSION_OPTIONS });
    // Exit code 1: bad options or no connection, before any transaction (a fault of the bench or the
    // server, not a measurement). Exit code 2: errors during the run, reported with the results.
    if (code !== 0 && code !== 2) throw new Error(`pgbench exited with code ${code}:\n${stderr.trim()}`);
    const errorLines = stderr.split('\n').filter((line) => /error|aborted|fatal/i.test(line));
    const tps = /^tps = ([\d.]+)/m.exec(stdout);
    if (!tps && code === 0) throw new Error(`Cannot read tps from pgbench's output:\n${stdout}\n${stderr}`);
    return {
      workload: spec.workload,
      clients: spec.clients,
      threads,
      durationSeconds: spec.durationSeconds,
      transactions: Number(/^number of transactions actually processed: (\d+)/m.exec(stdout)?.[1] ?? 0),
      // pgbench 15 and later print this line; older ones abort a client on any error instead.
      failedTransactions: Number(/^number of failed transactions: (\d+)/m.exec(stdout)?.[1] ?? 0),
      tps: round(Number(tps?.[1] ?? 0), 1),
      latency: summarizeLatencies(await readTransactionLatencies(directory)),
      abortedClients: errorLines.filter((line) => /client \d+ .*aborted/.test(line)).length,
      errorLines: errorLines.slice(0, 5),
      exitCode: code,
    };
  } finally {
    await rm(directory, { recursive: true, force: true });
  }
}

/**
 * Per-transaction log lines are "client_id transaction_no time script_no time_epoch time_us ...",
 * where time is the latency in microseconds ("failed" or "skipped" otherwise). With -j, each
 * thread writes its own file.
 */
async function readTransactionLatencies(directory: string): Promise<number[]> {
  const latenciesMs: number[] = [];
  for (const file of await readdir(directory)) {
    if (!file.startsWith('transactions.')) continue;
    const text = await readFile(path.join(directory, file), 'utf8');
    for (const line of text.split('\n')) {
      const micros = Number(line.split(' ')[2]);
      if (line.length > 0 && Number.isFinite(micros)) latenciesMs.push(micros / 1000);
    }
  }
  return latenciesMs;
}

/** Runs a program to its end and collects its output (pgbench prints a few lines only). */
function runProcess(file: string, args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, stdout, stderr }));
  });
}
