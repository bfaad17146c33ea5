import type { PoolClient } from 'pg';
import type { DataSource, QueryResult, QueryRunner } from 'typeorm';
import type { DatabaseConfig } from '../config/app-config';

/**
 * Runs one parameterised statement and returns its rows. Inside a transaction pass its
 * QueryRunner; outside one, the DataSource (which borrows a pooled connection for the statement).
 */
export async function queryRows<Row>(
  executor: QueryRunner | DataSource,
  sql: string,
  parameters: unknown[] = [],
): Promise<Row[]> {
  if ('createQueryRunner' in executor) {
    // DataSource.query returns plain rows for SELECT and INSERT ... RETURNING, but [rows, affected count] for UPDATE and DELETE.
    const result = await executor.query<Row[] | [Row[], number]>(sql, parameters);
    return isRowsAndCount(result) ? result[0] : (result);
  }
  const result = (await executor.query(sql, parameters, true)) as QueryResult<Row>;
  return result.records;
}

function isRowsAndCount<Row>(result: Row[] | [Row[], number]): result is [Row[], number] {
  return result.length === 2 && Array.isArray(result[0]) && typeof result[1] === 'number';
}

/**
 * queryRows as a named prepared statement: each pooled connection plans it once, not on every
 * call. For the hottest statements only. TypeORM cannot name a statement, so this goes to the
 * QueryRunner's node-postgres client; its errors are the driver's own (database-errors.ts reads
 * both kinds). Without a name (behind a transaction pooler, where the next transaction may run
 * on another server connection that never saw the statement), it is parsed on every call.
 */
export async function queryPreparedRows<Row>(queryRunner: QueryRunner, name: string | undefined, sql: string, parameters: unknown[]): Promise<Row[]> {
  const client = (await queryRunner.connect()) as PoolClient;
  const result = await client.query<Row & object>(name === undefined ? { text: sql, values: parameters } : { name, text: sql, values: parameters });
  return result.rows;
}

/** The name of a prepared statement, or undefined behind a transaction pooler (see queryPreparedRows). */
export function statementName(config: Pick<DatabaseConfig, 'pooler'>, name: string): string | undefined {
  return config.pooler === 'transaction' ? undefined : name;
}

/** A page of a keyset-paginated list. */
export interface Page<Item> {
  items: Item[];
  /** Pass as `cursor` to get the next page; null on the last page. */
  nextCursor: string | null;
}

/** Keyset position: the exact text of the sort timestamp (microseconds kept) and the row id. */
export interface KeysetPosition {
  at: string;
  id: string;
}

export function encodeCursor(position: KeysetPosition): string {
  return Buffer.from(JSON.stringify([position.at, position.id])).toString('base64url');
}

/** A timestamp column as KeysetPosition.at (UTC, microseconds), as a select-list expression. */
export function positionAtSql(column: string): string {
  return `to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`;
}

/** The exact shape of KeysetPosition.at as the repositories produce it (UTC, microseconds). */
const POSITION_AT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/**
 * A position timestamp PostgreSQL will accept: the format above and a real calendar date
 * (Date.parse alone accepts "1" or rolls "02-30" over to March, which PostgreSQL refuses).
 */
function isPositionTimestamp(at: string): boolean {
  if (!POSITION_AT.test(at)) return false;
  const millis = Date.parse(at);
  return !Number.isNaN(millis) && new Date(millis).toISOString().slice(0, 19) === at.slice(0, 19);
}

/** Returns undefined for a cursor this service did not produce. */
export function decodeCursor(cursor: string): KeysetPosition | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
    if (
      Array.isArray(value) &&
      value.length === 2 &&
      typeof value[0] === 'string' &&
      typeof value[1] === 'string' &&
      isPositionTimestamp(value[0]) &&
      /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value[1])
    ) {
      return { at: value[0], id: value[1] };
    }
  } catch {
    // malformed base64 or JSON: reported as undefined below
  }
  return undefined;
}

/**
 * Builds a page from rows fetched with `limit + 1`: the extra row only tells that a next page
 * exists, and the cursor points after the last item kept.
 */
export function toPage<Row extends { position: KeysetPosition }, Item>(
  rows: Row[],
  limit: number,
  toItem: (row: Row) => Item,
): Page<Item> {
  const kept = rows.slice(0, limit);
  const last = kept.at(-1);
  return {
    items: kept.map(toItem),
    nextCursor: rows.length > limit && last ? encodeCursor(last.position) : null,
  };
}
