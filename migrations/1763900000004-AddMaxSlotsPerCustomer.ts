import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * A per-customer limit on a match: the most slots one customer may have in it at once (confirmed
 * bookings and live holds). Null: no limit. The indexes serve the count of one customer's slots
 * in one match, which the slot ledger takes under the match row lock when the match has a limit.
 */
export class AddMaxSlotsPerCustomer1763900000004 implements MigrationInterface {
  name = 'AddMaxSlotsPerCustomer1763900000004';

  async up(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`ALTER TABLE "matches" ADD "max_slots_per_customer" integer`);
    await queryRunner.query(`ALTER TABLE "matches" ADD CONSTRAINT "matches_max_slots_per_customer_positive" CHECK ("max_slots_per_customer" > 0)`);
    await queryRunner.query(`CREATE INDEX "bookings_confirmed_match_customer_idx" ON "bookings" ("match_id", "customer_id") WHERE "status" = 'confirmed'`);
    await queryRunner.query(`CREATE INDEX "holds_active_match_customer_idx" ON "holds" ("match_id", "customer_id") WHERE "status" = 'active'`);
  }

  async down(queryRunner: QueryRunner): Promise<void> {
    await queryRunner.query(`DROP INDEX "holds_active_match_customer_idx"`);
    await queryRunner.query(`DROP INDEX "bookings_confirmed_match_customer_idx"`);
    await queryRunner.query(`ALTER TABLE "matches" DROP CONSTRAINT "matches_max_slots_per_customer_positive"`);
    await queryRunner.query(`ALTER TABLE "matches" DROP COLUMN "max_slots_per_customer"`);
  }
}
