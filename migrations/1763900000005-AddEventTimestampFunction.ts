import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A timestamp as the API writes it (ISO 8601, UTC, milliseconds, "Z"), for the event payloads
 * built in SQL (src/events/event-sql.ts). A function of its own keeps the format string, whose
 * colons pgbench would read as variables, out of the reservation statement that the benchmark
 * runs through pgbench. STABLE like to_char, so the planner inlines it.
 */
export class AddEventTimestampFunction1763900000005 implements MigrationInterface {
  name = 'AddEventTimestampFunction1763900000005';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE FUNCTION api_timestamp(value timestamptz) RETURNS text
      LANGUAGE sql STABLE PARALLEL SAFE
      AS $$ SELECT to_char(value AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') $$`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP FUNCTION api_timestamp(timestamptz)`);
  }
}
