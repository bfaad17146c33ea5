import { Injectable } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import { ReadReplicas } from '../database/read-replicas';
import { type KeysetPosition, positionAtSql, queryRows } from '../database/sql';
import { insertEvents, matchJson } from '../events/event-sql';
import { LIVE_HELD_SLOTS_SQL } from '../inventory/slot-counters';
import type { Match } from './match';

interface MatchRow {
  id: string;
  title: string;
  starts_at: Date;
  capacity: number;
  max_slots_per_customer: number | null;
  booked_slots: number;
  live_held_slots: number;
  waiting_entries: number;
  created_at: Date;
  updated_at: Date;
  position_at: string;
}

const MATCH_COLUMNS = `id, title, starts_at, capacity, max_slots_per_customer, booked_slots, ${LIVE_HELD_SLOTS_SQL} AS live_held_slots,
  waiting_entries, created_at, updated_at,
  ${positionAtSql('starts_at')} AS position_at`;

export interface MatchListFilter {
  from?: Date;
  to?: Date;
  after?: KeysetPosition;
  limit: number;
}

export interface MatchChanges {
  title?: string;
  startsAt?: Date;
  capacity?: number;
  /** null removes the limit. */
  maxSlotsPerCustomer?: number | null;
}

/** The statements about matches that leave the slot counters alone (those are the slot ledger's, inventory/slot-ledger.ts). */
@Injectable()
export class MatchesRepository {
  constructor(
    private readonly dataSource: DataSource,
    private readonly replicas: ReadReplicas,
  ) {}

  async insert(match: { title: string; startsAt: Date; capacity: number; maxSlotsPerCustomer: number | null }): Promise<Match> {
    const [row] = await queryRows<MatchRow>(
      this.dataSource,
      `WITH inserted AS (
         INSERT INTO matches (title, starts_at, capacity, max_slots_per_customer) VALUES ($1, $2, $3, $4) RETURNING ${MATCH_COLUMNS}
       ), evented AS (
         ${insertEvents('match.created', matchJson('inserted'), 'inserted')}
       )
       SELECT * FROM inserted`,
      [match.title, match.startsAt, match.capacity, match.maxSlotsPerCustomer],
    );
    return toMatch(row!);
  }

  /**
   * May be served by a read replica, a little stale; a match not there yet (created a moment ago)
   * is read from the primary. Within a transaction (`queryRunner`), read there.
   */
  async findById(id: string, queryRunner?: QueryRunner): Promise<Match | undefined> {
    const sql = `SELECT ${MATCH_COLUMNS} FROM matches WHERE id = $1`;
    const [row] = queryRunner ? await queryRows<MatchRow>(queryRunner, sql, [id]) : await this.replicas.query<MatchRow>(sql, [id], (rows) => rows.length === 0);
    return row && toMatch(row);
  }

  /**
   * Ordered by start time, then id; served by matches_starts_at_id_idx. Returns the position of
   * each item for the cursor. May be served by a read replica, a little stale.
   */
  async list(filter: MatchListFilter): Promise<Array<{ match: Match; position: KeysetPosition }>> {
    const conditions: string[] = [];
    const parameters: unknown[] = [];
    if (filter.from) {
      parameters.push(filter.from);
      conditions.push(`starts_at >= $${parameters.length}`);
    }
    if (filter.to) {
      parameters.push(filter.to);
      conditions.push(`starts_at < $${parameters.length}`);
    }
    if (filter.after) {
      parameters.push(filter.after.at, filter.after.id);
      conditions.push(`(starts_at, id) > ($${parameters.length - 1}::timestamptz, $${parameters.length}::uuid)`);
    }
    parameters.push(filter.limit);
    const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
    const rows = await this.replicas.query<MatchRow>(`SELECT ${MATCH_COLUMNS} FROM matches ${where} ORDER BY starts_at, id LIMIT $${parameters.length}`, parameters);
    return rows.map((row) => ({ match: toMatch(row), position: { at: row.position_at, id: row.id } }));
  }

  /** Call with the row locked (SlotLedger.changeMatch), which also checks a new capacity. */
  async update(queryRunner: QueryRunner, id: string, changes: MatchChanges): Promise<Match> {
    const [row] = await queryRows<MatchRow>(
      queryRunner,
      `WITH updated AS (
         UPDATE matches
            SET title = COALESCE($2, title),
                starts_at = COALESCE($3, starts_at),
                capacity = COALESCE($4, capacity),
                max_slots_per_customer = CASE WHEN $5 THEN $6::int ELSE max_slots_per_customer END,
                updated_at = now()
          WHERE id = $1
          RETURNING ${MATCH_COLUMNS}
       ), evented AS (
         ${insertEvents('match.updated', matchJson('updated'), 'updated')}
       )
       SELECT * FROM updated`,
      [id, changes.title ?? null, changes.startsAt ?? null, changes.capacity ?? null, changes.maxSlotsPerCustomer !== undefined, changes.maxSlotsPerCustomer ?? null],
    );
    return toMatch(row!);
  }
}

function toMatch(row: MatchRow): Match {
  return {
    id: row.id,
    title: row.title,
    startsAt: row.starts_at,
    capacity: row.capacity,
    maxSlotsPerCustomer: row.max_slots_per_customer,
    bookedSlots: row.booked_slots,
    heldSlots: row.live_held_slots,
    waitingEntries: row.waiting_entries,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}
