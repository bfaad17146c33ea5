import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** The production build that `npm run build` writes; the bench runs exactly what production runs. */
const REPOSITORY_ROOT = path.resolve(__dirname, '..');
const SERVICE_ENTRY = path.join(REPOSITORY_ROOT, 'dist', 'src', 'main.js');

/** The node options of package.json's start:prod script (the heap settings), so the bench runs the service as production does. */
function productionNodeOptions(): string[] {
  const { scripts } = JSON.parse(readFileSync(path.join(REPOSITORY_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  const [command, ...args] = (scripts['start:prod'] ?? '').split(/\s+/);
  if (command !== 'node' || args.at(-1) !== 'dist/src/main.js') throw new Error(`package.json's start:prod is not "node [options] dist/src/main.js": ${scripts['start:prod']}`);
  return args.slice(0, -1);
}
const READY_TIMEOUT_MS = 120_000;
const READY_POLL_MS = 200;
/** Longer than the service's SHUTDOWN_GRACE_PERIOD_MS default (25 s), so it can finish by itself. */
const STOP_TIMEOUT_MS = 30_000;
/** The service's default: one access-log line per request, as in production. */
export const SERVICE_LOG_LEVEL = 'log';

/** Variables of the bench's own environment that reach the service unchanged when they are set. */
const PASSED_THROUGH = (name: string): boolean =>
  name === 'REDIS_URL' || name === 'DATABASE_POOL_MAX' || name === 'WEB_CONCURRENCY' || name.startsWith('BOOKING_');

export interface ServiceSettings {
  databaseUrl: string;
  /** Set when databaseUrl is a PgBouncer in transaction mode: the database itself, for migrations. */
  directUrl?: string;
  jwtSecret: string;
  /** The service's stdout and stderr go here, straight from the child (not through the bench). */
  logFile: string;
  /** More of its environment (the tracing cost steps' OTEL_* variables). */
  extraEnv?: Record<string, string>;
  /** Write a V8 CPU profile (.cpuprofile) of the whole run into this folder when the service exits. */
  cpuProfileDirectory?: string;
}

export interface RunningService {
  pid: number;
  /** WEB_CONCURRENCY > 1: pid is a cluster primary, and its CPU and memory are its workers' too. */
  withWorkers: boolean;
  baseUrl: string;
  /** The environment it runs with, for the report: without the secret and DATABASE_URL, REDIS_URL only as "(set)". */
  environment: Record<string, string>;
  /** SIGTERM, then SIGKILL after a timeout. Safe to call more than once. */
  stop(): Promise<ServiceExit>;
}

export interface ServiceExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** It had to be killed: it did not stop within the timeout after SIGTERM. */
  killed: boolean;
}

export async function startService(settings: ServiceSettings, parentEnv: NodeJS.ProcessEnv): Promise<RunningService> {
  if (!existsSync(SERVICE_ENTRY)) throw new Error(`${SERVICE_ENTRY} is missing: run "npm run build" first (npm run bench does)`);
  const port = await freePort();
  const fixed: Record<string, string> = {
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(port),
    LOG_LEVEL: SERVICE_LOG_LEVEL,
    DATABASE_MIGRATE_ON_START: 'true',
    // Limits of 0 are off: the load comes from one address and 100 customers, far over any real limit.
    RATE_LIMIT_PER_CUSTOMER: '0',
    RATE_LIMIT_PER_IP: '0',
    // Background jobs off, so they neither compete with the measured requests nor lock match rows.
    HOLD_SWEEP_INTERVAL_MS: '0',
    RECONCILE_INTERVAL_MS: '0',
    IDEMPOTENCY_PURGE_INTERVAL_MS: '0',
    // Nothing routes traffic to it, so there is nobody to wait for between SIGTERM and the drain.
    SHUTDOWN_READINESS_DELAY_MS: '0',
  };
  if (settings.directUrl !== undefined) fixed.DATABASE_POOLER = 'transaction';
  const passed: Record<string, string> = {};
  for (const [name, value] of Object.entries(parentEnv)) {
    if (PASSED_THROUGH(name) && value !== undefined && value !== '') passed[name] = value;
  }
  const env: NodeJS.ProcessEnv = {
    PATH: parentEnv.PATH,
    ...fixed,
    ...passed,
    ...settings.extraEnv,
    DATABASE_URL: settings.databaseUrl,
    ...(settings.directUrl === undefined ? {} : { DATABASE_DIRECT_URL: settings.directUrl }),
    AUTH_JWT_SECRET: settings.jwtSecret,
  };

  const logFd = openSync(settings.logFile, 'a');
  let child: ChildProcess;
  try {
    const profiling = settings.cpuProfileDirectory === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${settings.cpuProfileDirectory}`];
    child = spawn(process.execPath, [...productionNodeOptions(), ...profiling, SERVICE_ENTRY], { env, stdio: ['ignore', logFd, logFd], cwd: REPOSITORY_ROOT });
  } finally {
    // The child has its own copy of the descriptor.
    closeSync(logFd);
  }
  const exited = new Promise<ServiceExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal, killed: false }));
  });
  if (child.pid === undefined) {
    const [error] = (await once(child, 'error')) as [Error];
    throw new Error(`Could not start ${SERVICE_ENTRY}`, { cause: error });
  }

  let stopping: Promise<ServiceExit> | undefined;
  const stop = (): Promise<ServiceExit> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return exited;
      child.kill('SIGTERM');
      // ref: false, or the pending timer would keep the bench alive for the whole timeout.
      const outcome = await Promise.race([exited, sleep(STOP_TIMEOUT_MS, undefined, { ref: false })]);
      if (outcome) return outcome;
      child.kill('SIGKILL');
      return { ...(await exited), killed: true };
    })();
    return stopping;
  };

  const baseUrl = `http://127.0.0.1:${port}`;
  try {
    await waitUntilReady(baseUrl, exited, settings.logFile);
  } catch (error) {
    await stop();
    throw error;
  }
  // A Redis URL may carry a password: the report only says that it was set.
  const environment = { ...fixed, ...passed, ...settings.extraEnv, ...(passed.REDIS_URL !== undefined ? { REDIS_URL: '(set)' } : {}) };
  return { pid: child.pid, withWorkers: Number(env.WEB_CONCURRENCY ?? '1') > 1, baseUrl, environment, stop };
}

/** Polls GET /health/ready until it answers 200; fails early when the process exits. */
async function waitUntilReady(baseUrl: string, exited: Promise<ServiceExit>, logFile: string): Promise<void> {
  let exit: ServiceExit | undefined;
  void exited.then((value) => (exit = value));
  const deadline = Date.now() + READY_TIMEOUT_MS;
  let lastProblem = 'no answer yet';
  while (Date.now() < deadline) {
    if (exit) {
      throw new Error(`The service exited during startup (code ${exit.code}, signal ${exit.signal}); last lines of ${logFile}:\n${tail(logFile)}`);
    }
    try {
      const response = await fetch(`${baseUrl}/health/ready`, { signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
      if (response.status === 200) return;
      lastProblem = `status ${response.status}`;
    } catch (error) {
      // Connection refused until it listens: expected while it starts; keep the reason for the timeout message.
      lastProblem = error instanceof Error ? error.message : String(error);
    }
    await sleep(READY_POLL_MS);
  }
  throw new Error(`The service was not ready within ${READY_TIMEOUT_MS / 1000} s (${lastProblem}); see ${logFile}`);
}

function tail(file: string, lines = 20): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch (error) {
    return `(cannot read the log: ${error instanceof Error ? error.message : String(error)})`;
  }
}

/** A port nobody listens on now. Another process could take it before the service does; unlikely on a bench machine. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (error) => reject(new Error('Cannot find a free TCP port', { cause: error })));
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
