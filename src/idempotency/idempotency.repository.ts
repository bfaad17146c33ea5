import { Injectable } from '@nestjs/common';
import { createHash } from 'node:crypto';
import { DataSource, type QueryRunner } from 'typeorm';
import { queryRows } from '../database/sql';

export interface IdempotencyScope {
  customerId: string;
  endpoint: string;
  key: string;
}

export interface StoredResponse {
  requestHash: string;
  status: number;
  body: unknown;
}

/** Every SQL statement about idempotency records. */
@Injectable()
export class IdempotencyRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** The unexpired record of a scope, if any. */
  async find(scope: IdempotencyScope, executor: QueryRunner | DataSource = this.dataSource): Promise<StoredResponse | undefined> {
    const [row] = await queryRows<{ request_hash: string; response_status: number; response_body: unknown }>(
      executor,
      `SELECT request_hash, response_status, response_body FROM idempotency_keys
        WHERE customer_id = $1 AND endpoint = $2 AND key = $3 AND expires_at > now()`,
      [scope.customerId, scope.endpoint, scope.key],
    );
    return row && { requestHash: row.request_hash, status: row.response_status, body: row.response_body };
  }

  /**
   * Takes the transaction-level advisory lock of the scope without waiting: false when a
   * request with the same key is being processed right now (the backstop of the Redis lock).
   */
  async tryLockScope(queryRunner: QueryRunner, scope: IdempotencyScope): Promise<boolean> {
    const [row] = await queryRows<{ locked: boolean }>(queryRunner, 'SELECT pg_try_advisory_xact_lock($1::bigint) AS locked', [
      scopeLockKey(scope),
    ]);
    return row?.locked === true;
  }

  /**
   * Records the response; an expired record of the same scope is replaced. Returns false when an
   * unexpired record already exists. Call inside the write's transaction.
   */
  async insert(queryRunner: QueryRunner, scope: IdempotencyScope, response: StoredResponse, ttlMs: number): Promise<boolean> {
    const rows = await queryRows<{ key: string }>(
      queryRunner,
      `INSERT INTO idempotency_keys (customer_id, endpoint, key, request_hash, response_status, response_body, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, now() + make_interval(secs => $7 / 1000.0))
       ON CONFLICT (customer_id, endpoint, key) DO UPDATE
         SET request_hash = EXCLUDED.request_hash, response_status = EXCLUDED.response_status,
             response_body = EXCLUDED.response_body, created_at = now(), expires_at = EXCLUDED.expires_at
       WHERE idempotency_keys.expires_at <= now()
       RETURNING key`,
      [scope.customerId, scope.endpoint, scope.key, response.requestHash, response.status, JSON.stringify(response.body), ttlMs],
    );
    return rows.length === 1;
  }

  /** Deletes up to `limit` expired records; returns how many. */
  async purgeExpired(queryRunner: QueryRunner, limit: number): Promise<number> {
    const rows = await queryRows<{ key: string }>(
      queryRunner,
      `DELETE FROM idempotency_keys WHERE ctid IN (
         SELECT ctid FROM idempotency_keys WHERE expires_at <= now() LIMIT $1 FOR UPDATE SKIP LOCKED
       ) RETURNING key`,
      [limit],
    );
    return rows.length;
  }
}

/** A 64-bit advisory lock key derived from the scope (collisions only make two keys wait for each other). */
function scopeLockKey(scope: IdempotencyScope): string {
  const digest = createHash('sha256').update(JSON.stringify([scope.customerId, scope.endpoint, scope.key])).digest();
  return digest.readBigInt64BE(0).toString();
}
