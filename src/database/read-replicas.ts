import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { Pool } from 'pg';
import { DataSource } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { Metrics } from '../observability/metrics';
import { queryRows } from './sql';

interface Replica {
  /** host:port, for logs and metrics (never the URL, which may carry a password). */
  label: string;
  pool: Pool;
  /** Replay lag measured on the replica at the last check; null when the last check failed. */
  lagMs: number | null;
}

/**
 * Replay lag as the replica sees it: 0 when it has replayed all the WAL it received, else the
 * time since the last transaction it replayed was committed on the primary. An idle primary
 * sends nothing, so a caught-up replica reads 0 however old its last replayed commit is.
 */
const LAG_SQL = `SELECT pg_is_in_recovery() AS replica,
  CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0
       ELSE GREATEST(0, EXTRACT(EPOCH FROM clock_timestamp() - pg_last_xact_replay_timestamp()) * 1000) END AS lag_ms`;

/**
 * Streaming replicas (DATABASE_READ_URLS) for reads that may be a little stale: match lists and
 * a match's availability. A replica serves while its lag, measured every
 * DATABASE_READ_LAG_CHECK_INTERVAL_MS, is at most DATABASE_READ_MAX_LAG_MS; otherwise, when none
 * qualifies, or when its query fails, the read goes to the primary, so a replica that lags or
 * dies costs no request. Writes, and reads of a customer's own bookings and holds, never come here.
 */
@Injectable()
export class ReadReplicas implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(ReadReplicas.name);
  private readonly replicas: Replica[];
  private readonly maxLagMs: number;
  private readonly checkIntervalMs: number;
  private timer: NodeJS.Timeout | undefined;
  private checking: Promise<void> | undefined;
  private turn = 0;

  constructor(
    private readonly primary: DataSource,
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'database'>,
  ) {
    const { database } = config;
    this.maxLagMs = database.readMaxLagMs;
    this.checkIntervalMs = database.readLagCheckIntervalMs;
    this.replicas = database.readUrls.map((url) => {
      const { hostname, port } = new URL(url);
      const pool = new Pool({
        connectionString: url,
        application_name: 'match-booking-reads',
        max: database.poolMax,
        connectionTimeoutMillis: Math.min(database.poolWaitTimeoutMs, 1_000),
        idleTimeoutMillis: database.poolIdleTimeoutMs,
        query_timeout: database.queryTimeoutMs,
        keepAlive: true,
        ...(database.pooler === 'transaction' ? {} : { statement_timeout: database.statementTimeoutMs }),
      });
      const label = `${hostname}:${port || '5432'}`;
      // An idle pooled connection that dies emits here; the next read simply opens another.
      pool.on('error', (error) => this.logger.warn(`Read replica ${label}: ${error.message}`));
      return { label, pool, lagMs: null };
    });
  }

  onApplicationBootstrap(): void {
    if (this.replicas.length === 0) return;
    const checkUnlessRunning = (): void => {
      this.checking ??= this.checkAll().finally(() => (this.checking = undefined));
    };
    checkUnlessRunning();
    this.timer = setInterval(checkUnlessRunning, this.checkIntervalMs);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    clearInterval(this.timer);
    await this.checking;
    await Promise.all(this.replicas.map((replica) => replica.pool.end().catch(() => undefined)));
  }

  /**
   * Runs a stale-tolerant read on a replica within the lag bound (in turn), else on the primary.
   * `needsPrimary` may reject a replica's answer (a match created a moment ago is not there yet):
   * the primary answers then.
   */
  async query<Row>(sql: string, parameters: unknown[], needsPrimary: (rows: Row[]) => boolean = () => false): Promise<Row[]> {
    const replica = this.pick();
    if (replica) {
      try {
        const { rows } = await replica.pool.query<Row & object>(sql, parameters);
        if (!needsPrimary(rows)) {
          this.metrics.reads.inc({ served_by: 'replica' });
          return rows;
        }
      } catch (error) {
        // Out of rotation until its next check succeeds; this read goes to the primary.
        replica.lagMs = null;
        this.logger.warn(`Read replica ${replica.label} failed (${error instanceof Error ? error.message : String(error)}); reading from the primary`);
      }
    }
    this.metrics.reads.inc({ served_by: 'primary' });
    return queryRows<Row>(this.primary, sql, parameters);
  }

  private pick(): Replica | undefined {
    const qualified = this.replicas.filter((replica) => replica.lagMs !== null && replica.lagMs <= this.maxLagMs);
    if (qualified.length === 0) return undefined;
    this.turn = (this.turn + 1) % qualified.length;
    return qualified[this.turn];
  }

  private async checkAll(): Promise<void> {
    await Promise.all(this.replicas.map((replica) => this.check(replica)));
  }

  private async check(replica: Replica): Promise<void> {
    const before = replica.lagMs;
    try {
      const { rows } = await replica.pool.query<{ replica: boolean; lag_ms: string | number }>(LAG_SQL);
      const row = rows[0];
      if (!row?.replica) throw new Error('it is not in recovery (a primary, or promoted)');
      replica.lagMs = Number(row.lag_ms);
      this.metrics.replicaLag.set({ replica: replica.label }, replica.lagMs / 1000);
    } catch (error) {
      replica.lagMs = null;
      if (before !== null) this.logger.warn(`Read replica ${replica.label} is out of rotation: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}
