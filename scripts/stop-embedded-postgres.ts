/** Stops the embedded PostgreSQL that the service or the migration commands started (npm run db:stop). */
import { loadConfig } from '../src/config/app-config';
import { stopEmbeddedPostgres } from '../src/database/embedded-postgres';

const { embeddedPostgres } = loadConfig(process.env, { requireProductionAuth: false });
stopEmbeddedPostgres(embeddedPostgres.dataDir).then(
  () => process.stdout.write(`Embedded PostgreSQL in ${embeddedPostgres.dataDir} is stopped\n`),
  (error: unknown) => {
    process.stderr.write(`db:stop: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  },
);
