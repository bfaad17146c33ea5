import { DataSource } from 'typeorm';
import { buildDataSourceOptions } from '../../src/database/data-source-options';
import { startTestApp, type TestApp } from '../support/test-app';
import { createMatch } from '../support/fixtures';

/** The database refuses bad data on its own, whatever the application does. */
describe('schema', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => {
    await t.close();
  });

  const violation = (sql: string, parameters: unknown[] = []) =>
    t.dataSource.query(sql, parameters).then(
      () => 'accepted',
      (error: { driverError?: { code?: string; constraint?: string } }) => error.driverError?.constraint ?? error.driverError?.code,
    );

  it('should refuse a counter above capacity or below zero', async () => {
    const matchId = await createMatch(t, 2);
    await expect(violation(`UPDATE matches SET booked_slots = 3 WHERE id = $1`, [matchId])).resolves.toBe('matches_booked_slots_within_capacity');
    await expect(violation(`UPDATE matches SET booked_slots = -1 WHERE id = $1`, [matchId])).resolves.toBe('matches_booked_slots_within_capacity');
    await expect(violation(`UPDATE matches SET capacity = -1, booked_slots = 0 WHERE id = $1`, [matchId])).resolves.not.toBe('accepted');
  });

  it('should refuse bookings of zero slots, unknown statuses, or unknown matches', async () => {
    const matchId = await createMatch(t, 2);
    const insert = (match: string, slots: number, status = 'confirmed') =>
      violation(`INSERT INTO bookings (match_id, customer_id, slots, status) VALUES ($1, 'c', $2, $3)`, [match, slots, status]);
    await expect(insert(matchId, 0)).resolves.toBe('bookings_slots_positive');
    await expect(insert(matchId, 1, 'pending')).resolves.toBe('bookings_status_known');
    await expect(insert('00000000-0000-4000-8000-000000000000', 1)).resolves.toBe('bookings_match_id_fkey');
    await expect(insert(matchId, 1, 'cancelled')).resolves.toBe('bookings_cancelled_at_matches_status');
  });

  it('should have an index for every list query', async () => {
    const indexes = await t.dataSource.query<Array<{ indexname: string; indexdef: string }>>(
      `SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename IN ('matches', 'bookings')`,
    );
    const definitions = Object.fromEntries(indexes.map((index) => [index.indexname, index.indexdef]));
    expect(definitions['matches_starts_at_id_idx']).toContain('(starts_at, id)');
    expect(definitions['bookings_customer_created_idx']).toContain('(customer_id, created_at, id)');
    expect(definitions['bookings_match_created_idx']).toContain('(match_id, created_at, id)');
    expect(definitions['bookings_created_idx']).toContain('(created_at, id)');
  });

  it('should match the entities exactly, so migration:generate has nothing to add', async () => {
    const dataSource = new DataSource(buildDataSourceOptions(t.config.database, t.databaseUrl, 'migrations'));
    await dataSource.initialize();
    try {
      const pending = await dataSource.driver.createSchemaBuilder().log();
      expect(pending.upQueries.map((query) => query.query)).toEqual([]);
    } finally {
      await dataSource.destroy();
    }
  });
});
