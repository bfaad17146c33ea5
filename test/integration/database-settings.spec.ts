import { DataSource } from 'typeorm';
import type { PostgresDriver } from 'typeorm/driver/postgres/PostgresDriver';
import { buildDataSourceOptions } from '../../src/database/data-source-options';
import { TransactionRunner } from '../../src/database/transaction-runner';
import { startTestApp, type TestApp } from '../support/test-app';

/** The timeouts and keepalives are read back from live sessions, not from the configuration object. */
describe('database session settings', () => {
  let t: TestApp;
  beforeAll(async () => {
    // Values away from the defaults, so the test proves the configuration is what sets them.
    t = await startTestApp({
      DATABASE_STATEMENT_TIMEOUT_MS: '7000',
      DATABASE_QUERY_TIMEOUT_MS: '9000',
      DATABASE_IDLE_IN_TRANSACTION_TIMEOUT_MS: '4000',
      DATABASE_LOCK_TIMEOUT_MS: '1500',
      DATABASE_TCP_KEEPALIVES_IDLE_S: '25',
      DATABASE_TCP_KEEPALIVES_INTERVAL_S: '7',
      DATABASE_TCP_KEEPALIVES_COUNT: '4',
      DATABASE_TCP_USER_TIMEOUT_MS: '45000',
      DATABASE_CONNECTION_CHECK_INTERVAL_MS: '2000',
      DATABASE_POOL_MAX: '13',
      DATABASE_POOL_WAIT_TIMEOUT_MS: '2500',
    });
  });
  afterAll(async () => {
    await t.close();
  });

  const show = async (executor: { query: (sql: string) => Promise<unknown> }, name: string): Promise<string> => {
    const rows = (await executor.query(`SHOW ${name}`)) as Array<Record<string, string>>;
    return rows[0]![name]!;
  };

  it('should give every pooled session the configured server-side timeouts and TCP keepalives', async () => {
    const expected: Record<string, string> = {
      statement_timeout: '7s',
      idle_in_transaction_session_timeout: '4s',
      tcp_keepalives_idle: '25',
      tcp_keepalives_interval: '7',
      tcp_keepalives_count: '4',
      tcp_user_timeout: '45000', // milliseconds; SHOW prints this one without a unit
      client_connection_check_interval: '2s',
      application_name: 'match-booking',
    };
    for (const [name, value] of Object.entries(expected)) {
      await expect(show(t.dataSource, name)).resolves.toBe(value);
    }
  });

  it('should bound lock waits with the configured lock_timeout on every service session, but not on the migrations session', async () => {
    await expect(show(t.dataSource, 'lock_timeout')).resolves.toBe('1500ms');
    const insideTransaction = await t.app.get(TransactionRunner).run('show', (queryRunner) => show(queryRunner, 'lock_timeout'));
    expect(insideTransaction).toBe('1500ms');
    const migrations = new DataSource(buildDataSourceOptions(t.config.database, t.databaseUrl, 'migrations'));
    await migrations.initialize();
    try {
      await expect(show(migrations, 'lock_timeout')).resolves.toBe('0');
    } finally {
      await migrations.destroy();
    }
  });

  it('should configure the client pool: size, wait bound, keepalive, and a query timeout above statement_timeout', () => {
    const pool = (t.dataSource.driver as PostgresDriver).master as { options: Record<string, unknown> };
    expect(pool.options).toMatchObject({
      max: 13,
      connectionTimeoutMillis: 2500,
      idleTimeoutMillis: 30_000,
      keepAlive: true,
      keepAliveInitialDelayMillis: 10_000,
      query_timeout: 9000,
    });
  });

  it('should run migrations on a session without the service statement timeout', async () => {
    const migrations = new DataSource(buildDataSourceOptions(t.config.database, t.databaseUrl, 'migrations'));
    await migrations.initialize();
    try {
      await expect(show(migrations, 'statement_timeout')).resolves.toBe('0');
      await expect(show(migrations, 'idle_in_transaction_session_timeout')).resolves.toBe('0');
      await expect(show(migrations, 'tcp_keepalives_idle')).resolves.toBe('25');
    } finally {
      await migrations.destroy();
    }
  });
});
