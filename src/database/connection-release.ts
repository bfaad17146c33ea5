import type { QueryRunner } from 'typeorm';

/**
 * Hands the connection back to the pool with an error, which makes pg-pool close it instead of
 * reusing it. node-postgres does not check a client's transaction state on release and
 * TypeORM's release() does not roll back, so a connection whose transaction may still be open
 * would otherwise carry that transaction (and its locks) into the next request.
 */
export async function destroyConnection(queryRunner: QueryRunner, reason: unknown): Promise<void> {
  const postgresRunner = queryRunner as unknown as { releasePostgresConnection?: (error: unknown) => Promise<void> };
  if (typeof postgresRunner.releasePostgresConnection === 'function') {
    await postgresRunner.releasePostgresConnection(reason instanceof Error ? reason : new Error(String(reason)));
  } else {
    await queryRunner.release();
  }
}
