import { randomBytes } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../src/config/app-config';
import { runPendingMigrations } from '../../src/database/database-setup';
import { startEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { freePort } from './ports';
import { databaseUrl, runDatabasePrefix, withServerClient } from './test-database';

const quiet = { log: () => undefined };

/**
 * Finds the PostgreSQL server for the run: DATABASE_URL when given, else an embedded server
 * in a temporary directory. Then migrates a template database that every test file copies.
 */
export default async function globalSetup(): Promise<void> {
  let server = process.env.DATABASE_URL;
  if (!server) {
    const dataDir = await mkdtemp(path.join(os.tmpdir(), 'match-booking-test-pg-'));
    const embedded = await startEmbeddedPostgres({ dataDir, port: await freePort(), database: 'postgres' }, quiet);
    process.env.TEST_EMBEDDED_PG_DIR = dataDir;
    server = embedded.url;
  }
  process.env.TEST_SERVER_URL = server;
  // Tests build their own configuration; the server URL must not leak into it as DATABASE_URL.
  delete process.env.DATABASE_URL;

  process.env.TEST_RUN_ID = `${process.pid}${randomBytes(2).toString('hex')}`;
  const template = `${runDatabasePrefix()}template`;
  await withServerClient(async (client) => {
    await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(template)}`);
    await client.query(`CREATE DATABASE ${client.escapeIdentifier(template)}`);
  }, server);
  const templateUrl = databaseUrl(server, template);
  await runPendingMigrations(loadConfig({ NODE_ENV: 'test', DATABASE_URL: templateUrl }), templateUrl, quiet);
  process.env.TEST_TEMPLATE_DATABASE = template;
}
