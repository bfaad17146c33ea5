import path from 'node:path';
import type { DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/app-config';
import { BookingEntity } from '../bookings/booking.entity';
import { EventCursorEntity, EventEntity } from '../events/event.entity';
import { HoldEntity } from '../holds/hold.entity';
import { IdempotencyKeyEntity } from '../idempotency/idempotency-key.entity';
import { MatchEntity } from '../matches/match.entity';
import { WaitlistEntryEntity } from '../waitlist/waitlist-entry.entity';
import { WebhookDeliveryEntity, WebhookEndpointEntity } from '../webhooks/webhook.entity';

export const ENTITIES = [MatchEntity, BookingEntity, HoldEntity, IdempotencyKeyEntity, EventEntity, EventCursorEntity, WebhookEndpointEntity, WebhookDeliveryEntity, WaitlistEntryEntity];
export const MIGRATIONS_TABLE = 'schema_migrations';
const MIGRATIONS_GLOB = path.join(__dirname, '..', '..', 'migrations', '*.{ts,js}');

/**
 * `service`: the pool that serves requests, with every timeout of the configuration.
 * `migrations`: one connection for schema changes, without the service's short statement and
 * idle-in-transaction timeouts (an index build may legitimately take minutes).
 */
export type DataSourcePurpose = 'service' | 'migrations';

export function buildDataSourceOptions(
  config: DatabaseConfig,
  url: string,
  purpose: DataSourcePurpose,
): DataSourceOptions {
  const forService = purpose === 'service';
  // A transaction pooler refuses settings in the startup packet (PgBouncer: "unsupported startup
  // parameter"), and would not keep them anyway: TransactionRunner sets the timeouts per transaction.
  const startupSettings = !(forService && config.pooler === 'transaction');
  return {
    type: 'postgres',
    url,
    applicationName: forService ? 'match-booking' : 'match-booking-migrations',
    entities: ENTITIES,
    migrations: [MIGRATIONS_GLOB],
    migrationsTableName: MIGRATIONS_TABLE,
    migrationsTransactionMode: 'each',
    synchronize: false,
    // gen_random_uuid() is built into PostgreSQL 13+: no extension to install.
    uuidExtension: 'pgcrypto',
    installExtensions: false,
    migrationsRun: false,
    poolSize: forService ? config.poolMax : 1,
    // node-postgres uses this bound both for opening a connection and for waiting on a free one.
    connectTimeoutMS: config.poolWaitTimeoutMs,
    extra: {
      idleTimeoutMillis: config.poolIdleTimeoutMs,
      keepAlive: true,
      keepAliveInitialDelayMillis: config.keepAliveInitialDelayMs,
      ...(forService ? { query_timeout: config.queryTimeoutMs } : {}),
      ...(forService && startupSettings
        ? { statement_timeout: config.statementTimeoutMs, idle_in_transaction_session_timeout: config.idleInTransactionTimeoutMs }
        : {}),
      ...(startupSettings ? { options: serverConnectionOptions(config, purpose) } : {}),
    },
  };
}

/** Server-side settings sent in the startup packet, so every pooled session has them from its first query. */
function serverConnectionOptions(config: DatabaseConfig, purpose: DataSourcePurpose): string {
  const settings: Record<string, number> = {
    // Every statement of the service gives up waiting for a lock after this; set per session,
    // not per transaction, so that it costs no round trip. Migrations may wait longer.
    ...(purpose === 'service' ? { lock_timeout: config.lockTimeoutMs } : {}),
    tcp_keepalives_idle: config.tcpKeepalivesIdleS,
    tcp_keepalives_interval: config.tcpKeepalivesIntervalS,
    tcp_keepalives_count: config.tcpKeepalivesCount,
    tcp_user_timeout: config.tcpUserTimeoutMs,
    // PostgreSQL 14+: notices a vanished client while the backend waits on a lock.
    client_connection_check_interval: config.connectionCheckIntervalMs,
  };
  return Object.entries(settings)
    .map(([name, value]) => `-c ${name}=${value}`)
    .join(' ');
}
