import type { MigrationInterface, QueryRunner } from 'typeorm';

export class CreateMatchesAndBookings1763900000000 implements MigrationInterface {
  name = 'CreateMatchesAndBookings1763900000000';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`
      CREATE TABLE "matches" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "title" text NOT NULL,
        "starts_at" TIMESTAMP WITH TIME ZONE NOT NULL,
        "capacity" integer NOT NULL,
        "booked_slots" integer NOT NULL DEFAULT 0,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "updated_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        CONSTRAINT "matches_pkey" PRIMARY KEY ("id"),
        CONSTRAINT "matches_capacity_non_negative" CHECK ("capacity" >= 0),
        CONSTRAINT "matches_booked_slots_within_capacity" CHECK ("booked_slots" >= 0 AND "booked_slots" <= "capacity"),
        CONSTRAINT "matches_title_length" CHECK (char_length("title") BETWEEN 1 AND 200)
      )`);
    await queryRunner.query(`CREATE INDEX "matches_starts_at_id_idx" ON "matches" ("starts_at", "id")`);

    await queryRunner.query(`
      CREATE TABLE "bookings" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "match_id" uuid NOT NULL,
        "customer_id" text NOT NULL,
        "slots" integer NOT NULL,
        "status" text NOT NULL DEFAULT 'confirmed',
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "cancelled_at" TIMESTAMP WITH TIME ZONE,
        CONSTRAINT "bookings_pkey" PRIMARY KEY ("id"),
        CONSTRAINT "bookings_match_id_fkey" FOREIGN KEY ("match_id") REFERENCES "matches" ("id") ON DELETE RESTRICT ON UPDATE NO ACTION,
        CONSTRAINT "bookings_slots_positive" CHECK ("slots" > 0),
        CONSTRAINT "bookings_status_known" CHECK ("status" IN ('confirmed', 'cancelled')),
        CONSTRAINT "bookings_cancelled_at_matches_status" CHECK (("status" = 'cancelled') = ("cancelled_at" IS NOT NULL)),
        CONSTRAINT "bookings_customer_id_length" CHECK (char_length("customer_id") BETWEEN 1 AND 200)
      )`);
    await queryRunner.query(`CREATE INDEX "bookings_customer_created_idx" ON "bookings" ("customer_id", "created_at", "id")`);
    await queryRunner.query(`CREATE INDEX "bookings_match_created_idx" ON "bookings" ("match_id", "created_at", "id")`);
    await queryRunner.query(`CREATE INDEX "bookings_created_idx" ON "bookings" ("created_at", "id")`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "bookings"`);
    await queryRunner.query(`DROP TABLE "matches"`);
  }
}
