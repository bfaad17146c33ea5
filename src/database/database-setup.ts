import { Client } from 'pg';
import { DataSource } from 'typeorm';
import type { AppConfig } from '../config/app-config';
import { ConfigurationError } from '../config/environment';
import { ADVISORY_LOCK_KEYS } from './advisory-locks';
import { buildDataSourceOptions } from './data-source-options';
import { type EmbeddedPostgresServer, startEmbeddedPostgres } from './embedded-postgres';

interface Logger {
  log(message: string): void;
}

export interface DatabaseTarget {
  url: string;
  /** Set when the service runs its own embedded PostgreSQL (no DATABASE_URL). */
  embedded?: EmbeddedPostgresServer;
}

/**
 * DATABASE_URL when given; otherwise the embedded PostgreSQL, started if it is not running.
 * Never in production: the production install carries no PostgreSQL binaries.
 */
export async function resolveDatabase(config: AppConfig, logger: Logger): Promise<DatabaseTarget> {
  if (config.database.url !== undefined) return { url: config.database.url };
  if (config.env === 'production') {
    throw new ConfigurationError(
      'Invalid configuration: DATABASE_URL must be set when NODE_ENV=production. The embedded PostgreSQL is for development and tests, and the production install does not include it.',
    );
  }
  const embedded = await startEmbeddedPostgres(config.embeddedPostgres, logger);
  return { url: embedded.url, embedded };
}

/**
 * The database a process serves from, migrated when it should be (always for the embedded
 * server; for DATABASE_URL when DATABASE_MIGRATE_ON_START is on): what a single process and a
 * cluster primary do first.
 */
export async function prepareDatabase(config: AppConfig, logger: Logger): Promise<DatabaseTarget> {
  const database = await resolveDatabase(config, logger);
  if (database.embedded || config.database.migrateOnStart) {
    // Over PostgreSQL itself when DATABASE_URL is a pooler: migrations take a session-level lock.
    await runPendingMigrations(config, config.database.directUrl ?? database.url, logger);
  }
  return database;
}

/**
 * Runs pending migrations on a connection without the service's short timeouts. Instances
 * that start together take turns through an advisory lock, so each migration runs once.
 */
export async function runPendingMigrations(config: AppConfig, url: string, logger: Logger): Promise<string[]> {
  const lockClient = new Client({ connectionString: url, application_name: 'match-booking-migration-lock' });
  await lockClient.connect();
  try {
    await lockClient.query('SELECT pg_advisory_lock($1)', [ADVISORY_LOCK_KEYS.migrations]);
    const dataSource = new DataSource(buildDataSourceOptions(config.database, url, 'migrations'));
    await dataSource.initialize();
    try {
      const applied = await dataSource.runMigrations({ transaction: 'each' });
      const names = applied.map((migration) => migration.name);
      logger.log(names.length > 0 ? `Applied migrations: ${names.join(', ')}` : 'Schema is up to date');
      return names;
    } finally {
      await dataSource.destroy();
    }
  } finally {
    // Ending the session releases the advisory lock even if the unlock query is never sent.
    await lockClient.end();
  }
}
