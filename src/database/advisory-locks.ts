import type { QueryRunner } from 'typeorm';
import { queryRows } from './sql';

/**
 * Every constant PostgreSQL advisory lock key of the service, in one place so that no two
 * collide. (Idempotency keys take transaction-level locks on 64-bit hashes of their scope,
 * idempotency.repository.ts; a collision with these would only make two requests take turns.)
 */
export const ADVISORY_LOCK_KEYS = {
  /** Session lock: instances starting together take turns running migrations (database-setup.ts). */
  migrations: 7_317_001,
  /** Transaction locks of the single-instance periodic jobs (jobs/job-runner.ts). */
  reconcileCounters: 7_317_002,
  sweepHolds: 7_317_003,
  purgeIdempotencyKeys: 7_317_004,
  purgeEvents: 7_317_005,
  dispatchWebhooks: 7_317_006,
} as const;

/** Takes a transaction-level advisory lock without waiting; false when another session holds it. Released at COMMIT or ROLLBACK. */
export async function tryTransactionLock(queryRunner: QueryRunner, key: number): Promise<boolean> {
  const [row] = await queryRows<{ acquired: boolean }>(queryRunner, 'SELECT pg_try_advisory_xact_lock($1) AS acquired', [key]);
  return row?.acquired === true;
}
