import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The durable record of a write made with an Idempotency-Key, scoped to the customer and the
 * endpoint. It is written in the same transaction as the write it describes, so a retry finds
 * it exactly when the write committed.
 */
export class AddIdempotencyKeys1763900000002 implements MigrationInterface {
  name = 'AddIdempotencyKeys1763900000002';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "idempotency_keys" (
        "customer_id" text NOT NULL,
        "endpoint" text NOT NULL,
        "key" text NOT NULL,
        "request_hash" text NOT NULL,
        "response_status" integer NOT NULL,
        "response_body" jsonb NOT NULL,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL,
        CONSTRAINT "idempotency_keys_pkey" PRIMARY KEY ("customer_id", "endpoint", "key"),
        CONSTRAINT "idempotency_keys_key_length" CHECK (char_length("key") BETWEEN 1 AND 255),
        CONSTRAINT "idempotency_keys_status_success" CHECK ("response_status" BETWEEN 200 AND 299)
      )`);
    await queryRunner.query(`CREATE INDEX "idempotency_keys_expires_at_idx" ON "idempotency_keys" ("expires_at")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "idempotency_keys"`);
  }
}
