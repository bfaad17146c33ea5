import { Injectable } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import { queryRows } from '../database/sql';
import { type Hold, HOLD_COLUMNS, type HoldRow, toHold } from './hold';

/** The reads of holds. The writes change slot counters too, so they are the slot ledger's (inventory/slot-ledger.ts). */
@Injectable()
export class HoldsRepository {
  constructor(private readonly dataSource: DataSource) {}

  /** The hold, and whether it has expired by the database clock. */
  async findById(id: string, executor: QueryRunner | DataSource = this.dataSource): Promise<(Hold & { expired: boolean }) | undefined> {
    const [row] = await queryRows<HoldRow & { expired: boolean }>(
      executor,
      `SELECT ${HOLD_COLUMNS}, expires_at <= now() AS expired FROM holds WHERE id = $1`,
      [id],
    );
    return row && { ...toHold(row), expired: row.expired };
  }
}
