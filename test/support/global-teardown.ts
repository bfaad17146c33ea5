import { rm } from 'node:fs/promises';
import { stopEmbeddedPostgres } from '../../src/database/embedded-postgres';
import { runDatabasePrefix, withServerClient } from './test-database';

/** Drops this run's databases (also those a crashed test file left behind) and stops the embedded server. */
export default async function globalTeardown(): Promise<void> {
  const server = process.env.TEST_SERVER_URL;
  if (server) {
    await withServerClient(async (client) => {
      const { rows } = await client.query<{ datname: string }>(
        `SELECT datname FROM pg_database WHERE starts_with(datname, $1)`,
        [runDatabasePrefix()],
      );
      for (const { datname } of rows) {
        await client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(datname)} WITH (FORCE)`);
      }
    }, server);
  }
  const embeddedDir = process.env.TEST_EMBEDDED_PG_DIR;
  if (embeddedDir) {
    await stopEmbeddedPostgres(embeddedDir);
    await rm(embeddedDir, { recursive: true, force: true });
  }
}
