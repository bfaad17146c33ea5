import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Holds: slots reserved now and confirmed (or released) later. matches.held_slots counts the
 * slots of active holds, including expired ones that no sweep or booking has released yet;
 * availability is computed from live holds only (see src/inventory/slot-counters.ts).
 */
export class AddHolds1763900000001 implements MigrationInterface {
  name = 'AddHolds1763900000001';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "matches" ADD "held_slots" integer NOT NULL DEFAULT 0`);
    await queryRunner.query(`ALTER TABLE "matches" DROP CONSTRAINT "matches_booked_slots_within_capacity"`);
    await queryRunner.query(
      `ALTER TABLE "matches" ADD CONSTRAINT "matches_booked_slots_within_capacity" CHECK ("booked_slots" >= 0 AND "held_slots" >= 0 AND "booked_slots" + "held_slots" <= "capacity")`,
    );
    await queryRunner.query(`
      CREATE TABLE "holds" (
        "id" uuid NOT NULL DEFAULT gen_random_uuid(),
        "match_id" uuid NOT NULL,
        "customer_id" text NOT NULL,
        "slots" integer NOT NULL,
        "status" text NOT NULL DEFAULT 'active',
        "expires_at" TIMESTAMP WITH TIME ZONE NOT NULL,
        "created_at" TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
        "resolved_at" TIMESTAMP WITH TIME ZONE,
        "booking_id" uuid,
        CONSTRAINT "holds_pkey" PRIMARY KEY ("id"),
        CONSTRAINT "holds_match_id_fkey" FOREIGN KEY ("match_id") REFERENCES "matches" ("id") ON DELETE RESTRICT ON UPDATE NO ACTION,
        CONSTRAINT "holds_booking_id_fkey" FOREIGN KEY ("booking_id") REFERENCES "bookings" ("id") ON DELETE RESTRICT ON UPDATE NO ACTION,
        CONSTRAINT "holds_slots_positive" CHECK ("slots" > 0),
        CONSTRAINT "holds_status_known" CHECK ("status" IN ('active', 'confirmed', 'released', 'expired')),
        CONSTRAINT "holds_resolved_at_matches_status" CHECK (("status" = 'active') = ("resolved_at" IS NULL)),
        CONSTRAINT "holds_booking_id_matches_status" CHECK (("status" = 'confirmed') = ("booking_id" IS NOT NULL)),
        CONSTRAINT "holds_customer_id_length" CHECK (char_length("customer_id") BETWEEN 1 AND 200)
      )`);
    // Live holds of a match (availability), and due holds across matches (the sweeper).
    await queryRunner.query(`CREATE INDEX "holds_active_match_expiry_idx" ON "holds" ("match_id", "expires_at") WHERE "status" = 'active'`);
    await queryRunner.query(`CREATE INDEX "holds_active_expiry_idx" ON "holds" ("expires_at") WHERE "status" = 'active'`);
    await queryRunner.query(`CREATE UNIQUE INDEX "holds_booking_id_key" ON "holds" ("booking_id") WHERE "booking_id" IS NOT NULL`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP TABLE "holds"`);
    await queryRunner.query(`ALTER TABLE "matches" DROP CONSTRAINT "matches_booked_slots_within_capacity"`);
    await queryRunner.query(
      `ALTER TABLE "matches" ADD CONSTRAINT "matches_booked_slots_within_capacity" CHECK ("booked_slots" >= 0 AND "booked_slots" <= "capacity")`,
    );
    await queryRunner.query(`ALTER TABLE "matches" DROP COLUMN "held_slots"`);
  }
}
