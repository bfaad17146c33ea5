import { Inject, Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { Client } from 'pg';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { DATABASE_URL } from '../config/config.module';

/**
 * Pings PostgreSQL on a connection of its own, outside the request pool, so that readiness
 * is not stuck behind requests queueing for a pooled connection. A failed or slow ping
 * discards the connection; the next ping opens a new one.
 */
@Injectable()
export class DatabasePing implements OnApplicationShutdown {
  private readonly logger = new Logger(DatabasePing.name);
  private client: Promise<Client> | undefined;
  private readonly timeoutMs: number;
  /** A transaction pooler refuses settings in the startup packet; the client-side timeout bounds the ping alone then. */
  private readonly throughPooler: boolean;

  constructor(
    @Inject(DATABASE_URL) private readonly url: string,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'health' | 'database'>,
  ) {
    this.timeoutMs = config.health.checkTimeoutMs;
    this.throughPooler = config.database.pooler === 'transaction';
  }

  async ping(): Promise<void> {
    const client = await this.connection();
    try {
      // A standby answers too, but cannot take a booking: not ready (a failover in progress, or a balancer routing wrong).
      const { rows } = await client.query<{ standby: boolean }>('SELECT pg_is_in_recovery() AS standby');
      if (rows[0]?.standby) throw new Error('connected to a standby (read-only): no primary behind DATABASE_URL');
    } catch (error) {
      this.discard();
      throw error;
    }
  }

  onApplicationShutdown(): void {
    this.discard();
  }

  private connection(): Promise<Client> {
    this.client ??= this.connect();
    return this.client;
  }

  private async connect(): Promise<Client> {
    const client = new Client({
      connectionString: this.url,
      application_name: 'match-booking-health',
      connectionTimeoutMillis: this.timeoutMs,
      query_timeout: this.timeoutMs,
      ...(this.throughPooler ? {} : { statement_timeout: this.timeoutMs }),
      keepAlive: true,
    });
    client.on('error', (error) => {
      this.logger.warn(`Health-check connection lost: ${error.message}`);
      this.discard();
    });
    try {
      await client.connect();
      return client;
    } catch (error) {
      this.client = undefined;
      throw error;
    }
  }

  private discard(): void {
    const pending = this.client;
    this.client = undefined;
    // Ending a broken connection may fail too; there is nothing left to clean up then.
    void pending?.then((client) => client.end()).catch(() => undefined);
  }
}
