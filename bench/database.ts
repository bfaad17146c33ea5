import { Client, Pool } from 'pg';
import { loadConfig } from '../src/config/app-config';
import { startEmbeddedPostgres } from '../src/database/embedded-postgres';

/** The database the bench creates, fills and drops; it never touches the service's own data. */
export const BENCH_DATABASE = 'match_booking_bench';
/** Session advisory lock a run holds on the maintenance database (any fixed number; see lockBenchDatabase). */
const BENCH_LOCK_KEY = 7_146_281_937;

export interface DatabaseServer {
  source: 'DATABASE_URL' | 'embedded';
  /** host:port, for the report (never the password). */
  address: string;
  /** A database on that server to connect to for CREATE/DROP DATABASE. */
  maintenanceUrl: string;
  /** Stops the embedded server when the bench started it; otherwise does nothing. */
  release(): Promise<void>;
}

/**
 * The configured server: DATABASE_URL's when it is set; otherwise the service's embedded
 * PostgreSQL, started the way the service starts it (and stopped at the end only if the bench
 * started it, so a developer's running server is left alone).
 */
export async function resolveDatabaseServer(env: NodeJS.ProcessEnv, log: (message: string) => void): Promise<DatabaseServer> {
  const configured = env.DATABASE_URL?.trim();
  if (configured) {
    const url = new URL(configured);
    // Connected to the bench database itself, we could not drop it: use the default one instead.
    if (decodeURIComponent(url.pathname.slice(1)) === BENCH_DATABASE) url.pathname = '/postgres';
    return { source: 'DATABASE_URL', address: `${url.hostname}:${url.port || '5432'}`, maintenanceUrl: url.toString(), release: async () => {} };
  }
  // The migration CLI and db:stop read their settings this way too: no JWT secret needed.
  const { embeddedPostgres } = loadConfig(env, { requireProductionAuth: false });
  const server = await startEmbeddedPostgres(embeddedPostgres, { log });
  return {
    source: 'embedded',
    address: `127.0.0.1:${embeddedPostgres.port}`,
    maintenanceUrl: server.url,
    release: async () => {
      if (server.startedHere) await server.stop();
    },
  };
}

/** URL of the bench database on the same server, with the same credentials and options. */
export function benchDatabaseUrl(server: DatabaseServer): string {
  const url = new URL(server.maintenanceUrl);
  url.pathname = `/${BENCH_DATABASE}`;
  return url.toString();
}

/**
 * Makes this run the only one on the server: a second run would drop this run's database under
 * its service (createBenchDatabase drops a leftover WITH (FORCE)). Held by one session until the
 * returned function ends it, or until the process dies, which ends the session too. Runs whose
 * DATABASE_URLs name different databases of one server do not see each other's lock.
 */
export async function lockBenchDatabase(server: DatabaseServer, lockKey = BENCH_LOCK_KEY): Promise<() => Promise<void>> {
  const client = await connectMaintenanceClient(server);
  let locked: boolean;
  try {
    const { rows } = await client.query<{ locked: boolean }>('SELECT pg_try_advisory_lock($1) AS locked', [lockKey]);
    locked = rows[0]?.locked === true;
  } catch (error) {
    await client.end();
    throw error;
  }
  if (!locked) {
    await client.end();
    throw new Error(`Another bench run is using database ${BENCH_DATABASE} on ${server.address}: wait until it has finished`);
  }
  return () => client.end();
}

/** Drops the bench database if a previous run left it, and creates it empty. */
export async function createBenchDatabase(server: DatabaseServer): Promise<string> {
  await withMaintenanceClient(server, async (client) => {
    await dropDatabase(client);
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(BENCH_DATABASE)}`);
  });
  return benchDatabaseUrl(server);
}

export async function dropBenchDatabase(server: DatabaseServer): Promise<void> {
  await withMaintenanceClient(server, dropDatabase);
}

/** A small pool on the bench database for setup SQL and the checks, outside the service's pool. */
export function openBenchPool(databaseUrl: string): Pool {
  return new Pool({ connectionString: databaseUrl, max: 2, application_name: 'match-booking-bench' });
}

async function dropDatabase(client: Client): Promise<void> {
  // WITH (FORCE) (PostgreSQL 13+) ends sessions still connected, e.g. those of a service that
  // an interrupted run could not stop.
  await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(BENCH_DATABASE)} WITH (FORCE)`);
}

async function connectMaintenanceClient(server: DatabaseServer): Promise<Client> {
  const client = new Client({ connectionString: server.maintenanceUrl, application_name: 'match-booking-bench' });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`Cannot connect to the PostgreSQL server at ${server.address} (${server.source})`, { cause: error });
  }
  return client;
}

async function withMaintenanceClient(server: DatabaseServer, work: (client: Client) => Promise<void>): Promise<void> {
  const client = await connectMaintenanceClient(server);
  try {
    await work(client);
  } finally {
    await client.end();
  }
}
