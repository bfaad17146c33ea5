import { randomBytes } from 'node:crypto';
import { Client } from 'pg';

/**
 * Each test file gets its own database, copied from a template that global-setup.ts migrated
 * once, so files can run in parallel without seeing each other's rows.
 */
export const TEST_DATABASE_PREFIX = 'booking_test_';

/** Names of this jest run's databases start with this, so parallel runs on one server never touch each other's. */
export function runDatabasePrefix(): string {
  const runId = process.env.TEST_RUN_ID;
  if (!runId) throw new Error('TEST_RUN_ID is not set: run the tests through jest (global-setup.ts sets it)');
  return `${TEST_DATABASE_PREFIX}${runId}_`;
}

export function serverUrl(): string {
  const url = process.env.TEST_SERVER_URL;
  if (!url) throw new Error('TEST_SERVER_URL is not set: run the tests through jest (global-setup.ts sets it)');
  return url;
}

export function databaseUrl(serverUrlWithAnyDatabase: string, database: string): string {
  const url = new URL(serverUrlWithAnyDatabase);
  url.pathname = `/${database}`;
  return url.toString();
}

export async function withServerClient<T>(work: (client: Client) => Promise<T>, url = serverUrl()): Promise<T> {
  const client = new Client({ connectionString: url });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/** Creates a fresh, migrated database and returns its URL. */
export async function createTestDatabase(): Promise<string> {
  const template = process.env.TEST_TEMPLATE_DATABASE;
  if (!template) throw new Error('TEST_TEMPLATE_DATABASE is not set: run the tests through jest');
  const name = `${runDatabasePrefix()}${randomBytes(6).toString('hex')}`;
  await withServerClient(async (client) => {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await client.query(`CREATE DATABASE ${client.escapeIdentifier(name)} TEMPLATE ${client.escapeIdentifier(template)}`);
        return;
      } catch (error) {
        // 55006: another worker is copying the template at this very moment.
        if ((error as { code?: string }).code !== '55006' || attempt === 20) throw error;
        await new Promise((resolve) => setTimeout(resolve, 100 * attempt));
      }
    }
  });
  return databaseUrl(serverUrl(), name);
}

export async function dropTestDatabase(url: string): Promise<void> {
  const name = new URL(url).pathname.slice(1);
  await withServerClient((client) => client.query(`DROP DATABASE IF EXISTS ${client.escapeIdentifier(name)} WITH (FORCE)`));
}
