import { Injectable } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import { type KeysetPosition, queryRows } from '../database/sql';
import type { WaitlistStatus } from './waitlist-entry.entity';
import { toWaitlistEntry, type WaitlistEntry, waitlistEntryColumns, type WaitlistEntryRow } from './waitlist-entry';

export interface WaitlistListFilter {
  customerId?: string;
  matchId?: string;
  status?: WaitlistStatus;
  before?: KeysetPosition;
  limit: number;
}

/** The reads of waitlist entries. The writes take and give slots, so they are the slot ledger's (inventory/slot-ledger.ts). */
@Injectable()
export class WaitlistRepository {
  constructor(private readonly dataSource: DataSource) {}

  async findById(id: string, executor: QueryRunner | DataSource = this.dataSource): Promise<WaitlistEntry | undefined> {
    const [row] = await queryRows<WaitlistEntryRow>(executor, `SELECT ${waitlistEntryColumns('w')} FROM waitlist_entries w WHERE w.id = $1`, [id]);
    return row && toWaitlistEntry(row);
  }

  /** Newest first; each filter combination is served by one of the waitlist_entries_*created_idx indexes. */
  async list(filter: WaitlistListFilter): Promise<Array<{ entry: WaitlistEntry; position: KeysetPosition }>> {
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    const add = (condition: (placeholder: string) => string, value: unknown): void => {
      parameters.push(value);
      conditions.push(condition(`$${parameters.length}`));
    };
    if (filter.customerId !== undefined) add((p) => `w.customer_id = ${p}`, filter.customerId);
    if (filter.matchId !== undefined) add((p) => `w.match_id = ${p}`, filter.matchId);
    if (filter.status !== undefined) add((p) => `w.status = ${p}`, filter.status);
    if (filter.before) {
      parameters.push(filter.before.at, filter.before.id);
      conditions.push(`(w.created_at, w.id) < ($${parameters.length - 1}::timestamptz, $${parameters.length}::uuid)`);
    }
    parameters.push(filter.limit);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const rows = await queryRows<WaitlistEntryRow>(
      this.dataSource,
      `SELECT ${waitlistEntryColumns('w')} FROM waitlist_entries w ${where} ORDER BY w.created_at DESC, w.id DESC LIMIT $${parameters.length}`,
      parameters,
    );
    return rows.map((row) => ({ entry: toWaitlistEntry(row), position: { at: row.position_at, id: row.id } }));
  }
}
