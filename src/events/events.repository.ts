import { Injectable } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import { queryRows } from '../database/sql';
import type { DomainEvent, EventType } from './event-types';

/** A place in the event feed: after the event of this transaction and position. */
export interface FeedPosition {
  transactionId: string;
  position: string;
}

export const FEED_START: FeedPosition = { transactionId: '0', position: '0' };

interface EventRow {
  position: string;
  transaction_id: string;
  id: string;
  type: EventType;
  occurred_at: string;
  data: Record<string, unknown>;
}

/**
 * Events of transactions that have ended, after `after` in feed order. The order is that of the
 * writing transactions' ids, then of the events within one; only transactions older than the
 * oldest one still running (the snapshot's xmin) are read. A transaction that commits late
 * therefore always appears after every position already handed out, so a reader that resumes
 * from its cursor never skips an event, whatever order transactions commit in. The price: a
 * transaction left open anywhere on the server holds the feed back until it ends.
 * `after`: an SQL row expression (transaction id, position); `limit`: an SQL expression.
 */
export function settledEventsSql(after: string, limit: string): string {
  return `SELECT position, transaction_id, id, type,
       api_timestamp(occurred_at) AS occurred_at, data
  FROM events
 WHERE (transaction_id, position) > ${after}
   AND transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint
 ORDER BY transaction_id, position
 LIMIT ${limit}`;
}

/** The reads of the outbox and its retention. The events themselves are written by the statements that make the changes (event-sql.ts). */
@Injectable()
export class EventsRepository {
  constructor(private readonly dataSource: DataSource) {}

  async feed(after: FeedPosition, limit: number): Promise<{ events: DomainEvent[]; last: FeedPosition }> {
    const rows = await queryRows<EventRow>(this.dataSource, settledEventsSql('($1::bigint, $2::bigint)', '$3'), [after.transactionId, after.position, limit]);
    const lastRow = rows.at(-1);
    return {
      events: rows.map(toEvent),
      last: lastRow ? { transactionId: lastRow.transaction_id, position: lastRow.position } : after,
    };
  }

  /**
   * Deletes up to `limit` events older than the retention that no delivery still waits for and,
   * when webhooks are dispatched, that the dispatcher has passed (their deliveries go with
   * them). Returns how many.
   */
  async purge(queryRunner: QueryRunner, retentionMs: number, limit: number, afterDispatch: boolean): Promise<number> {
    const rows = await queryRows<{ position: string }>(
      queryRunner,
      `DELETE FROM events WHERE position IN (
         SELECT e.position FROM events e
          WHERE e.occurred_at < now() - make_interval(secs => $1 / 1000.0)
            AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.event_position = e.position AND d.status = 'pending')
            AND (NOT $3 OR EXISTS (SELECT 1 FROM event_cursors c WHERE c.name = 'webhook-dispatch' AND (e.transaction_id, e.position) <= (c.transaction_id, c.position)))
          ORDER BY e.occurred_at
          LIMIT $2
          FOR UPDATE SKIP LOCKED
       ) RETURNING position`,
      [retentionMs, limit, afterDispatch],
    );
    return rows.length;
  }
}

export function toEvent(row: Pick<EventRow, 'id' | 'type' | 'occurred_at' | 'data'>): DomainEvent {
  return { id: row.id, type: row.type, occurredAt: row.occurred_at, data: row.data };
}

/** The feed cursor handed to clients: opaque, URL-safe. */
export function encodeFeedCursor(position: FeedPosition): string {
  return Buffer.from(`${position.transactionId}.${position.position}`).toString('base64url');
}

export function decodeFeedCursor(cursor: string): FeedPosition | undefined {
  const match = /^(\d{1,19})\.(\d{1,19})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return match ? { transactionId: match[1]!, position: match[2]! } : undefined;
}
