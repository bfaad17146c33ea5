import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The transactional outbox and webhook delivery. An event is inserted by the same statement or
 * transaction as the change it describes, so it exists exactly when the change committed.
 * transaction_id (the writer's pg_current_xact_id) and position order the event feed, which
 * only shows events of transactions that have ended (src/events/events.repository.ts).
 */
export class AddEventsAndWebhooks1763900000003 implements MigrationInterface {
  name = 'AddEventsAndWebhooks1763900000003';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "events" (
        "position" BIGSERIAL NOT NULL,
        "id" uuid NOT NULL,
        "transaction_id" bigint NOT NULL,
        "type" text NOT NULL,
        "occurred_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "data" jsonb NOT NULL,
        CONSTRAINT "events_pkey" PRIMARY KEY ("position"),
        CONSTRAINT "events_id_key" UNIQUE ("id")
      )`);
    await queryRunner.query(`CREATE INDEX "events_feed_idx" ON "events" ("transaction_id", "position")`);
    await queryRunner.query(`CREATE INDEX "events_occurred_at_idx" ON "events" ("occurred_at")`);

    await queryRunner.query(`
      CREATE TABLE "event_cursors" (
        "name" text NOT NULL,
        "transaction_id" bigint NOT NULL,
        "position" bigint NOT NULL,
        CONSTRAINT "event_cursors_pkey" PRIMARY KEY ("name")
      )`);
    // The webhook dispatcher's place in the feed: it starts at the beginning.
    await queryRunner.query(`INSERT INTO "event_cursors" ("name", "transaction_id", "position") VALUES ('webhook-dispatch', 0, 0)`);

    await queryRunner.query(`
      CREATE TABLE "webhook_endpoints" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "url" text NOT NULL,
        "event_types" text array,
        "secret" text NOT NULL,
        "previous_secret" text,
        "previous_secret_expires_at" TIMESTAMP WITH TIME ZONE,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "webhook_endpoints_pkey" PRIMARY KEY ("id"),
        CONSTRAINT "webhook_endpoints_url_length" CHECK (char_length("url") BETWEEN 1 AND 2000)
      )`);

    await queryRunner.query(`
      CREATE TABLE "webhook_deliveries" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "event_position" bigint NOT NULL,
        "endpoint_id" uuid NOT NULL,
        "status" text NOT NULL DEFAULT 'pending',
        "attempts" integer NOT NULL DEFAULT 0,
        "next_attempt_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "leased_until" TIMESTAMP WITH TIME ZONE,
        "last_status" integer,
        "last_error" text,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "delivered_at" TIMESTAMP WITH TIME ZONE,
        CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id"),
        CONSTRAINT "webhook_deliveries_event_endpoint_key" UNIQUE ("event_position", "endpoint_id"),
        CONSTRAINT "webhook_deliveries_event_position_fkey" FOREIGN KEY ("event_position") REFERENCES "events" ("position") ON DELETE CASCADE ON UPDATE NO ACTION,
        CONSTRAINT "webhook_deliveries_endpoint_id_fkey" FOREIGN KEY ("endpoint_id") REFERENCES "webhook_endpoints" ("id") ON DELETE CASCADE ON UPDATE NO ACTION,
        CONSTRAINT "webhook_deliveries_status_known" CHECK ("status" IN ('pending', 'delivered', 'failed'))
      )`);
    // The relay's claim: due pending deliveries, oldest first.
    await queryRunner.query(`CREATE INDEX "webhook_deliveries_due_idx" ON "webhook_deliveries" ("next_attempt_at") WHERE "status" = 'pending'`);
    await queryRunner.query(`CREATE INDEX "webhook_deliveries_endpoint_idx" ON "webhook_deliveries" ("endpoint_id", "created_at")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "webhook_deliveries"`);
    await queryRunner.query(`DROP TABLE "webhook_endpoints"`);
    await queryRunner.query(`DROP TABLE "event_cursors"`);
    await queryRunner.query(`DROP TABLE "events"`);
  }
}
