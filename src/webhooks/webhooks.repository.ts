import { Injectable } from '@nestjs/common';
import { DataSource, type QueryRunner } from 'typeorm';
import { queryRows } from '../database/sql';
import type { DomainEvent, EventType } from '../events/event-types';
import { settledEventsSql } from '../events/events.repository';
import type { DeliveryStatus } from './webhook.entity';

export interface WebhookEndpoint {
  id: string;
  url: string;
  /** Null: every event type. */
  eventTypes: EventType[] | null;
  createdAt: Date;
  /** Until when the previous secret still signs beside the current one, after a rotation. */
  previousSecretExpiresAt: Date | null;
}

export interface WebhookDelivery {
  id: string;
  eventId: string;
  eventType: EventType;
  endpointId: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date | null;
  lastStatus: number | null;
  lastError: string | null;
  createdAt: Date;
  deliveredAt: Date | null;
}

/** A delivery claimed by this instance for one attempt, with what sending it needs. */
export interface ClaimedDelivery {
  id: string;
  /** The attempt this claim is for; the outcome is recorded only if no one claimed it since. */
  attempt: number;
  endpointId: string;
  url: string;
  secrets: string[];
  event: DomainEvent;
  eventCreatedAt: Date;
}

interface EndpointRow {
  id: string;
  url: string;
  event_types: EventType[] | null;
  created_at: Date;
  previous_secret_expires_at: Date | null;
}

const ENDPOINT_COLUMNS = 'id, url, event_types, created_at, CASE WHEN previous_secret_expires_at > now() THEN previous_secret_expires_at END AS previous_secret_expires_at';

interface DeliveryRow {
  id: string;
  event_id: string;
  type: EventType;
  endpoint_id: string;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  last_status: number | null;
  last_error: string | null;
  created_at: Date;
  delivered_at: Date | null;
}

const DELIVERY_COLUMNS = `d.id, e.id AS event_id, e.type, d.endpoint_id, d.status, d.attempts, d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.delivered_at`;

/** Every SQL statement about webhook endpoints and their deliveries. */
@Injectable()
export class WebhooksRepository {
  constructor(private readonly dataSource: DataSource) {}

  async insertEndpoint(endpoint: { url: string; eventTypes: EventType[] | null; secret: string }): Promise<WebhookEndpoint> {
    const [row] = await queryRows<EndpointRow>(
      this.dataSource,
      `INSERT INTO webhook_endpoints (url, event_types, secret) VALUES ($1, $2, $3) RETURNING ${ENDPOINT_COLUMNS}`,
      [endpoint.url, endpoint.eventTypes, endpoint.secret],
    );
    return toEndpoint(row!);
  }

  async listEndpoints(): Promise<WebhookEndpoint[]> {
    const rows = await queryRows<EndpointRow>(this.dataSource, `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints ORDER BY created_at, id`);
    return rows.map(toEndpoint);
  }

  async findEndpoint(id: string): Promise<WebhookEndpoint | undefined> {
    const [row] = await queryRows<EndpointRow>(this.dataSource, `SELECT ${ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1`, [id]);
    return row && toEndpoint(row);
  }

  /** Deletes the endpoint and its deliveries; false when there is none. */
  async deleteEndpoint(id: string): Promise<boolean> {
    const rows = await queryRows<{ id: string }>(this.dataSource, 'DELETE FROM webhook_endpoints WHERE id = $1 RETURNING id', [id]);
    return rows.length === 1;
  }

  /** Makes `secret` the current one; the current one keeps signing for `graceMs`. */
  async rotateSecret(id: string, secret: string, graceMs: number): Promise<WebhookEndpoint | undefined> {
    const [row] = await queryRows<EndpointRow>(
      this.dataSource,
      `UPDATE webhook_endpoints
          SET previous_secret = secret, secret = $2,
              previous_secret_expires_at = now() + make_interval(secs => $3 / 1000.0)
        WHERE id = $1
        RETURNING ${ENDPOINT_COLUMNS}`,
      [id, secret, graceMs],
    );
    return row && toEndpoint(row);
  }

  /** Newest first. */
  async listDeliveries(endpointId: string, status: DeliveryStatus | undefined, limit: number): Promise<WebhookDelivery[]> {
    const rows = await queryRows<DeliveryRow>(
      this.dataSource,
      `SELECT ${DELIVERY_COLUMNS} FROM webhook_deliveries d JOIN events e ON e.position = d.event_position
        WHERE d.endpoint_id = $1 AND ($2::text IS NULL OR d.status = $2)
        ORDER BY d.created_at DESC, d.id DESC LIMIT $3`,
      [endpointId, status ?? null, limit],
    );
    return rows.map(toDelivery);
  }

  /** Sends the delivery again from its first attempt, whatever its status; undefined when there is none. */
  async redeliver(id: string): Promise<WebhookDelivery | undefined> {
    const [row] = await queryRows<DeliveryRow>(
      this.dataSource,
      `WITH reset AS (
         UPDATE webhook_deliveries SET status = 'pending', attempts = 0, next_attempt_at = now(), leased_until = NULL
          WHERE id = $1 RETURNING *
       )
       SELECT ${DELIVERY_COLUMNS} FROM reset d JOIN events e ON e.position = d.event_position`,
      [id],
    );
    return row && toDelivery(row);
  }

  /**
   * Turns the settled events after the dispatch cursor into deliveries for every endpoint that
   * takes their type, and moves the cursor past them, in one statement. Call under the dispatch
   * job's lock. Returns the events read, by type, and the deliveries made.
   */
  async dispatch(queryRunner: QueryRunner, limit: number): Promise<{ eventTypes: EventType[]; deliveries: number }> {
    const rows = await queryRows<{ types: EventType[] | null; deliveries: number }>(
      queryRunner,
      `WITH cursor AS (
         SELECT transaction_id, position FROM event_cursors WHERE name = 'webhook-dispatch'
       ), batch AS MATERIALIZED (
         SELECT s.* FROM cursor c, LATERAL (${settledEventsSql('(c.transaction_id, c.position)', '$1')}) s
       ), delivered AS (
         INSERT INTO webhook_deliveries (event_position, endpoint_id)
         SELECT b.position, w.id FROM batch b JOIN webhook_endpoints w ON w.event_types IS NULL OR b.type = ANY (w.event_types)
         ON CONFLICT DO NOTHING
         RETURNING 1
       ), moved AS (
         UPDATE event_cursors SET (transaction_id, position) = (
           SELECT transaction_id, position FROM batch ORDER BY transaction_id DESC, position DESC LIMIT 1
         ) WHERE name = 'webhook-dispatch' AND EXISTS (SELECT 1 FROM batch)
       )
       SELECT (SELECT array_agg(type) FROM batch) AS types, (SELECT count(*) FROM delivered)::int AS deliveries`,
      [limit],
    );
    return { eventTypes: rows[0]?.types ?? [], deliveries: rows[0]?.deliveries ?? 0 };
  }

  /** Age of the oldest delivery still pending, in seconds (0 when none). */
  async oldestPendingAgeSeconds(): Promise<number> {
    const [row] = await queryRows<{ age: number | null }>(
      this.dataSource,
      `SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS age FROM webhook_deliveries WHERE status = 'pending'`,
    );
    return row?.age ?? 0;
  }

  /**
   * Claims up to `limit` due deliveries for one attempt each (FOR UPDATE SKIP LOCKED: instances
   * never claim the same one), leasing them for `leaseMs`: if this instance dies, the lease runs
   * out and another sends it. Deliveries of `skipEndpoints` (busy here) are left for others.
   */
  async claimDue(limit: number, leaseMs: number, skipEndpoints: string[]): Promise<ClaimedDelivery[]> {
    const rows = await queryRows<{
      id: string;
      attempts: number;
      endpoint_id: string;
      url: string;
      secret: string;
      previous_secret: string | null;
      event_id: string;
      type: EventType;
      occurred_at: string;
      data: Record<string, unknown>;
      event_created_at: Date;
    }>(
      this.dataSource,
      `WITH due AS (
         SELECT id FROM webhook_deliveries
          WHERE status = 'pending' AND next_attempt_at <= now() AND (leased_until IS NULL OR leased_until <= now())
            AND endpoint_id <> ALL ($3::uuid[])
          ORDER BY next_attempt_at
          LIMIT $1
          FOR UPDATE SKIP LOCKED
       )
       UPDATE webhook_deliveries d SET leased_until = now() + make_interval(secs => $2 / 1000.0), attempts = d.attempts + 1
         FROM due, events e, webhook_endpoints w
        WHERE d.id = due.id AND e.position = d.event_position AND w.id = d.endpoint_id
        RETURNING d.id, d.attempts, d.endpoint_id, w.url, w.secret,
                  CASE WHEN w.previous_secret_expires_at > now() THEN w.previous_secret END AS previous_secret,
                  e.id AS event_id, e.type, api_timestamp(e.occurred_at) AS occurred_at,
                  e.data, e.occurred_at AS event_created_at`,
      [limit, leaseMs, skipEndpoints],
    );
    return rows.map((row) => ({
      id: row.id,
      attempt: row.attempts,
      endpointId: row.endpoint_id,
      url: row.url,
      secrets: row.previous_secret === null ? [row.secret] : [row.secret, row.previous_secret],
      event: { id: row.event_id, type: row.type, occurredAt: row.occurred_at, data: row.data },
      eventCreatedAt: row.event_created_at,
    }));
  }

  /** Gives a claimed delivery back untried (this instance had no room for it after all). */
  async unclaim(deliveries: ClaimedDelivery[]): Promise<void> {
    if (deliveries.length === 0) return;
    await queryRows(
      this.dataSource,
      `UPDATE webhook_deliveries d SET leased_until = NULL, attempts = d.attempts - 1
         FROM unnest($1::uuid[], $2::int[]) AS c(id, attempt)
        WHERE d.id = c.id AND d.attempts = c.attempt AND d.status = 'pending'`,
      [deliveries.map((d) => d.id), deliveries.map((d) => d.attempt)],
    );
  }

  /**
   * Records an attempt's outcome: delivered; or, after a failure, the next attempt after
   * `retryInMs`, or failed for good when that is null. Ignored when the delivery was claimed
   * again since (this instance's lease ran out) or redelivered. Returns whether it was recorded.
   */
  async recordAttempt(
    delivery: ClaimedDelivery,
    outcome: { delivered: boolean; status: number | null; error: string | null; retryInMs: number | null },
  ): Promise<boolean> {
    const rows = await queryRows<{ id: string }>(
      this.dataSource,
      `UPDATE webhook_deliveries
          SET status = CASE WHEN $3 THEN 'delivered' WHEN $6::bigint IS NULL THEN 'failed' ELSE 'pending' END,
              delivered_at = CASE WHEN $3 THEN now() END,
              next_attempt_at = CASE WHEN $6::bigint IS NULL THEN next_attempt_at ELSE now() + make_interval(secs => $6 / 1000.0) END,
              leased_until = NULL, last_status = $4, last_error = $5
        WHERE id = $1 AND attempts = $2 AND status = 'pending'
        RETURNING id`,
      [delivery.id, delivery.attempt, outcome.delivered, outcome.status, outcome.error, outcome.retryInMs],
    );
    return rows.length === 1;
  }
}

function toEndpoint(row: EndpointRow): WebhookEndpoint {
  return { id: row.id, url: row.url, eventTypes: row.event_types, createdAt: row.created_at, previousSecretExpiresAt: row.previous_secret_expires_at };
}

function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    eventId: row.event_id,
    eventType: row.type,
    endpointId: row.endpoint_id,
    status: row.status,
    attempts: row.attempts,
    nextAttemptAt: row.status === 'pending' ? row.next_attempt_at : null,
    lastStatus: row.last_status,
    lastError: row.last_error,
    createdAt: row.created_at,
    deliveredAt: row.delivered_at,
  };
}
