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
   * For each scope, in one round trip: takes its transaction-level advisory lock without waiting
   * (`locked: false` when a request with the same key is being processed right now; the backstop
   * of the Redis lock), and, if taken, reads its committed record if any. Also returns the
   * transaction's timestamp (the created_at of every row the transaction inserts).
   */
  async claimScopes(
    queryRunner: QueryRunner,
    scopes: IdempotencyScope[],
  ): Promise<{ transactionTime: Date; claims: Array<{ locked: boolean; stored: StoredResponse | undefined }> }> {
    const rows = await queryRows<{ locked: boolean; request_hash: string | null; response_status: number | null; response_body: unknown; transaction_time: Date }>(
      queryRunner,
      `SELECT pg_try_advisory_xact_lock(c.lock_key) AS locked, r.request_hash, r.response_status, r.response_body, now() AS transaction_time
         FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS c(lock_key, customer_id, endpoint, key, position)
         LEFT JOIN idempotency_keys r
           ON r.customer_id = c.customer_id AND r.endpoint = c.endpoint AND r.key = c.key AND r.expires_at > now()
        ORDER BY c.position`,
      [scopes.map(scopeLockKey), scopes.map((s) => s.customerId), scopes.map((s) => s.endpoint), scopes.map((s) => s.key)],
    );
    return {
      transactionTime: rows[0]!.transaction_time,
      claims: rows.map((row) => ({
        locked: row.locked,
        stored:
          row.locked && row.request_hash !== null && row.response_status !== null
            ? { requestHash: row.request_hash, status: row.response_status, body: row.response_body }
            : undefined,
      })),
    };
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
