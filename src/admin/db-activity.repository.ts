import { Injectable } from '@nestjs/common';
import { DataSource } from 'typeorm';
import { queryRows } from '../database/sql';

export interface SessionActivity {
  pid: number;
  applicationName: string;
  clientAddress: string | null;
  state: string | null;
  waitEventType: string | null;
  waitEvent: string | null;
  transactionDurationMs: number | null;
  stateDurationMs: number | null;
  query: string;
}

export interface BlockingPair {
  blockedPid: number;
  blockedQuery: string;
  blockedWaitingMs: number | null;
  blockingPid: number;
  blockingState: string | null;
  blockingQuery: string;
  blockingTransactionDurationMs: number | null;
}

export interface DatabaseActivity {
  connections: { total: number; active: number; idle: number; idleInTransaction: number };
  longRunningTransactions: SessionActivity[];
  idleInTransaction: SessionActivity[];
  blocking: BlockingPair[];
}

const SESSION_COLUMNS = `
  pid, application_name, client_addr::text AS client_address, state, wait_event_type, wait_event,
  (EXTRACT(EPOCH FROM now() - xact_start) * 1000)::float8 AS transaction_ms,
  (EXTRACT(EPOCH FROM now() - state_change) * 1000)::float8 AS state_ms,
  left(query, 500) AS query`;

interface SessionRow {
  pid: number;
  application_name: string;
  client_address: string | null;
  state: string | null;
  wait_event_type: string | null;
  wait_event: string | null;
  transaction_ms: number | null;
  state_ms: number | null;
  query: string;
}

/** What the monitoring queries of the runbook show, for this service's database only. */
@Injectable()
export class DbActivityRepository {
  constructor(private readonly dataSource: DataSource) {}

  async snapshot(longerThanMs: number): Promise<DatabaseActivity> {
    const [counts] = await queryRows<{ total: string; active: string; idle: string; idle_in_transaction: string }>(
      this.dataSource,
      `SELECT count(*) AS total,
              count(*) FILTER (WHERE state = 'active') AS active,
              count(*) FILTER (WHERE state = 'idle') AS idle,
              count(*) FILTER (WHERE state LIKE 'idle in transaction%') AS idle_in_transaction
         FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'`,
    );
    const longRunning = await queryRows<SessionRow>(
      this.dataSource,
      `SELECT ${SESSION_COLUMNS} FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND xact_start IS NOT NULL AND now() - xact_start > make_interval(secs => $1 / 1000.0)
        ORDER BY xact_start`,
      [longerThanMs],
    );
    const idleInTransaction = await queryRows<SessionRow>(
      this.dataSource,
      `SELECT ${SESSION_COLUMNS} FROM pg_stat_activity
        WHERE datname = current_database() AND state LIKE 'idle in transaction%'
        ORDER BY state_change`,
    );
    const blocking = await queryRows<{
      blocked_pid: number;
      blocked_query: string;
      blocked_ms: number | null;
      blocking_pid: number;
      blocking_state: string | null;
      blocking_query: string;
      blocking_transaction_ms: number | null;
    }>(
      this.dataSource,
      `SELECT blocked.pid AS blocked_pid, left(blocked.query, 500) AS blocked_query,
              (EXTRACT(EPOCH FROM now() - blocked.state_change) * 1000)::float8 AS blocked_ms,
              blocking.pid AS blocking_pid, blocking.state AS blocking_state, left(blocking.query, 500) AS blocking_query,
              (EXTRACT(EPOCH FROM now() - blocking.xact_start) * 1000)::float8 AS blocking_transaction_ms
         FROM pg_stat_activity blocked
         JOIN pg_stat_activity blocking ON blocking.pid = ANY (pg_blocking_pids(blocked.pid))
        WHERE blocked.datname = current_database()
        ORDER BY blocked.state_change`,
    );
    return {
      connections: {
        total: Number(counts?.total ?? 0),
        active: Number(counts?.active ?? 0),
        idle: Number(counts?.idle ?? 0),
        idleInTransaction: Number(counts?.idle_in_transaction ?? 0),
      },
      longRunningTransactions: longRunning.map(toSession),
      idleInTransaction: idleInTransaction.map(toSession),
      blocking: blocking.map((row) => ({
        blockedPid: row.blocked_pid,
        blockedQuery: row.blocked_query,
        blockedWaitingMs: round(row.blocked_ms),
        blockingPid: row.blocking_pid,
        blockingState: row.blocking_state,
        blockingQuery: row.blocking_query,
        blockingTransactionDurationMs: round(row.blocking_transaction_ms),
      })),
    };
  }
}

function toSession(row: SessionRow): SessionActivity {
  return {
    pid: row.pid,
    applicationName: row.application_name,
    clientAddress: row.client_address,
    state: row.state,
    waitEventType: row.wait_event_type,
    waitEvent: row.wait_event,
    transactionDurationMs: round(row.transaction_ms),
    stateDurationMs: round(row.state_ms),
    query: row.query,
  };
}

function round(value: number | null): number | null {
  return value === null ? null : Math.round(value);
}
