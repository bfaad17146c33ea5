import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * The waitlist of a match. Entries are served strictly in line_number order (the order they
 * joined in, under the match row lock). An offered entry points at the hold made for it; the
 * hold carries the offer's slots, so the held counter counts an offer once; expires_at is a copy
 * of the hold's (which never changes), so an entry reads without a join.
 * matches.waiting_entries counts the match's waiting entries, kept by the slot ledger under the
 * match row lock like the slot counters: a write that locks the row reads it without a query.
 */
export class AddWaitlist1763900000006 implements MigrationInterface {
  name = 'AddWaitlist1763900000006';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "matches" ADD "waiting_entries" integer NOT NULL DEFAULT 0`);
    await queryRunner.query(`ALTER TABLE "matches" ADD CONSTRAINT "matches_waiting_entries_non_negative" CHECK ("waiting_entries" >= 0)`);
    await queryRunner.query(`
      CREATE TABLE "waitlist_entries" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "line_number" BIGSERIAL NOT NULL,
        "match_id" uuid NOT NULL,
        "customer_id" text NOT NULL,
        "slots" integer NOT NULL,
        "status" text NOT NULL DEFAULT 'waiting',
        "hold_id" uuid,
        "expires_at" TIMESTAMP WITH TIME ZONE,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "resolved_at" TIMESTAMP WITH TIME ZONE,
        CONSTRAINT "waitlist_entries_pkey" PRIMARY KEY ("id"),
        CONSTRAINT "waitlist_entries_match_id_fkey" FOREIGN KEY ("match_id") REFERENCES "matches" ("id") ON DELETE RESTRICT ON UPDATE NO ACTION,
        CONSTRAINT "waitlist_entries_hold_id_fkey" FOREIGN KEY ("hold_id") REFERENCES "holds" ("id") ON DELETE RESTRICT ON UPDATE NO ACTION,
        CONSTRAINT "waitlist_entries_slots_positive" CHECK ("slots" > 0),
        CONSTRAINT "waitlist_entries_status_known" CHECK ("status" IN ('waiting', 'offered', 'accepted', 'declined', 'expired', 'left')),
        CONSTRAINT "waitlist_entries_resolved_at_matches_status" CHECK (("status" IN ('waiting', 'offered')) = ("resolved_at" IS NULL)),
        CONSTRAINT "waitlist_entries_hold_id_matches_status" CHECK (
          ("status" IN ('offered', 'accepted', 'declined') AND "hold_id" IS NOT NULL) OR ("status" IN ('waiting', 'left') AND "hold_id" IS NULL) OR "status" = 'expired'
        ),
        CONSTRAINT "waitlist_entries_expires_at_with_hold" CHECK (("hold_id" IS NULL) = ("expires_at" IS NULL)),
        CONSTRAINT "waitlist_entries_customer_id_length" CHECK (char_length("customer_id") BETWEEN 1 AND 200)
      )`);
    // One open entry per customer and match; the line of a match; the lists; an offer's entry from its hold.
    await queryRunner.query(
      `CREATE UNIQUE INDEX "waitlist_entries_open_key" ON "waitlist_entries" ("match_id", "customer_id") WHERE "status" IN ('waiting', 'offered')`,
    );
    await queryRunner.query(`CREATE INDEX "waitlist_entries_line_idx" ON "waitlist_entries" ("match_id", "line_number") WHERE "status" = 'waiting'`);
    await queryRunner.query(`CREATE INDEX "waitlist_entries_customer_created_idx" ON "waitlist_entries" ("customer_id", "created_at", "id")`);
    await queryRunner.query(`CREATE INDEX "waitlist_entries_match_created_idx" ON "waitlist_entries" ("match_id", "created_at", "id")`);
    await queryRunner.query(`CREATE INDEX "waitlist_entries_created_idx" ON "waitlist_entries" ("created_at", "id")`);
    await queryRunner.query(`CREATE UNIQUE INDEX "waitlist_entries_hold_id_key" ON "waitlist_entries" ("hold_id") WHERE "hold_id" IS NOT NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "waitlist_entries"`);
    await queryRunner.query(`ALTER TABLE "matches" DROP CONSTRAINT "matches_waiting_entries_non_negative"`);
    await queryRunner.query(`ALTER TABLE "matches" DROP COLUMN "waiting_entries"`);
  }
}
