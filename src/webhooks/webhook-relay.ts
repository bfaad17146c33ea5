import { type BeforeApplicationShutdown, Inject, Injectable, Logger, type OnApplicationBootstrap } from '@nestjs/common';
import { context, propagation, type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { Metrics } from '../observability/metrics';
import { RepeatedFailureLog } from '../observability/repeated-failure-log';
import { tracer } from '../observability/spans';
import { resolveWebhookAddress } from './outbound-address';
import { sendWebhook, type WebhookResponse } from './webhook-sender';
import { webhookHeaders } from './webhook-signature';
import { type ClaimedDelivery, WebhooksRepository } from './webhooks.repository';
import { describeError } from '../errors/describe-error';

/** Deliveries one instance sends at once, over all endpoints. */
const MAX_IN_FLIGHT = 64;
/** Only a short snippet of an answer is kept, for the admins' view of a failed delivery. */
const MAX_RESPONSE_BYTES = 4096;
/** A lease outlasts an attempt by this much, so a slow but live attempt is not sent twice. */
const LEASE_MARGIN_MS = 5_000;
const RETRY_JITTER = 0.2;

/**
 * Sends webhook deliveries, at least once, on every instance. Every WEBHOOK_RELAY_INTERVAL_MS it
 * claims the due deliveries it has room for (FOR UPDATE SKIP LOCKED, leased for one attempt) and
 * sends them outside any transaction: no database connection or lock waits on a receiver. An
 * endpoint gets at most WEBHOOK_CONCURRENCY_PER_ENDPOINT attempts at once from an instance, so a
 * slow or dead endpoint uses up its own share and delays no other. A 2xx ends a delivery;
 * anything else, a timeout or a refused address is retried after the next delay of
 * WEBHOOK_RETRY_SCHEDULE (with jitter), and after the last the delivery has failed. If the
 * instance dies mid-attempt, the lease runs out and another instance sends it again, with the
 * same webhook-id.
 *
 * With tracing on, each attempt is a span `webhook.deliver` that starts a trace of its own (the
 * event was written by a transaction long finished, maybe on another instance), and the request
 * carries its traceparent, so the receiver's trace continues it. Its attributes name the
 * delivery, the event and the booking or hold (webhook.resource_id; a booking's id is among
 * booking.ids on the batch span that decided it), which leads back to the trace that made the event.
 */
@Injectable()
export class WebhookRelay implements OnApplicationBootstrap, BeforeApplicationShutdown {
  private readonly logger = new Logger(WebhookRelay.name);
  private readonly claimFailures = new RepeatedFailureLog(this.logger, 'Claiming webhook deliveries');
  private readonly config: AppConfig['webhooks'];
  private readonly leaseMs: number;
  private readonly inFlightByEndpoint = new Map<string, number>();
  private readonly attempts = new Set<Promise<void>>();
  private timer: NodeJS.Timeout | undefined;
  private claiming: Promise<unknown> | undefined;
  private stopping = false;

  constructor(
    private readonly webhooks: WebhooksRepository,
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'webhooks'>,
  ) {
    this.config = config.webhooks;
    this.leaseMs = this.config.timeoutMs + LEASE_MARGIN_MS;
  }

  onApplicationBootstrap(): void {
    if (this.config.relayIntervalMs === 0) return;
    this.timer = setInterval(() => {
      if (this.claiming || this.stopping) return;
      this.claiming = this.relayOnce()
        .then(() => this.claimFailures.succeeded())
        .catch((error: unknown) => this.claimFailures.failed(error))
        .finally(() => (this.claiming = undefined));
    }, this.config.relayIntervalMs);
    this.timer.unref();
  }

  /**
   * No new claims; the attempts under way finish (each bounded by WEBHOOK_TIMEOUT_MS) and record
   * their outcome, before any module's onApplicationShutdown destroys the database pool.
   */
  async beforeApplicationShutdown(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await this.claiming;
    await Promise.all(this.attempts);
  }

  /** Claims the due deliveries this instance has room for and starts sending them; returns how many. */
  async relayOnce(): Promise<number> {
    const room = MAX_IN_FLIGHT - this.attempts.size;
    if (room <= 0) return 0;
    const busy = [...this.inFlightByEndpoint].filter(([, count]) => count >= this.config.concurrencyPerEndpoint).map(([id]) => id);
    const claimed = await this.webhooks.claimDue(room, this.leaseMs, busy);
    const taken = new Map<string, number>();
    const kept: ClaimedDelivery[] = [];
    const extra: ClaimedDelivery[] = [];
    for (const delivery of claimed) {
      const inFlight = (this.inFlightByEndpoint.get(delivery.endpointId) ?? 0) + (taken.get(delivery.endpointId) ?? 0);
      if (inFlight >= this.config.concurrencyPerEndpoint) {
        extra.push(delivery);
      } else {
        taken.set(delivery.endpointId, (taken.get(delivery.endpointId) ?? 0) + 1);
        kept.push(delivery);
      }
    }
    await this.webhooks.unclaim(extra);
    for (const delivery of kept) {
      const attempt = this.attempt(delivery).finally(() => this.attempts.delete(attempt));
      this.attempts.add(attempt);
    }
    return kept.length;
  }

  /** Waits for the attempts under way (tests). */
  async settled(): Promise<void> {
    await Promise.all(this.attempts);
  }

  private attempt(delivery: ClaimedDelivery): Promise<void> {
    const resourceId = delivery.event.data.id;
    const attributes = {
      'webhook.delivery_id': delivery.id,
      'webhook.attempt': delivery.attempt,
      'webhook.endpoint_id': delivery.endpointId,
      'webhook.event_id': delivery.event.id,
      'webhook.event_type': delivery.event.type,
      ...(typeof resourceId === 'string' ? { 'webhook.resource_id': resourceId } : {}),
    };
    return tracer.startActiveSpan('webhook.deliver', { kind: SpanKind.PRODUCER, root: true, attributes }, async (span) => {
      try {
        await this.attemptInSpan(delivery, span);
      } finally {
        span.end();
      }
    });
  }

  private async attemptInSpan(delivery: ClaimedDelivery, span: Span): Promise<void> {
    this.inFlightByEndpoint.set(delivery.endpointId, (this.inFlightByEndpoint.get(delivery.endpointId) ?? 0) + 1);
    const stopTimer = this.metrics.webhookAttemptDuration.startTimer();
    try {
      const response = await this.send(delivery);
      stopTimer();
      const retryInMs = response.ok ? null : this.retryDelayMs(delivery.attempt);
      if (response.status !== undefined) span.setAttribute('http.response.status_code', response.status);
      if (!response.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: response.error });
      const recorded = await this.webhooks.recordAttempt(delivery, {
        delivered: response.ok,
        status: response.status ?? null,
        error: response.ok ? null : response.error.slice(0, 500),
        retryInMs,
      });
      if (!recorded) return; // claimed again elsewhere after this lease ran out, or redelivered meanwhile
      const outcome = response.ok ? 'delivered' : retryInMs === null ? 'failed' : 'retried';
      span.setAttribute('webhook.outcome', outcome);
      this.metrics.webhookDeliveries.inc({ outcome });
      if (response.ok) this.metrics.webhookDeliveryLag.observe((Date.now() - delivery.eventCreatedAt.getTime()) / 1000);
      if (outcome === 'failed') {
        this.logger.warn(`Webhook delivery ${delivery.id} of event ${delivery.event.id} to endpoint ${delivery.endpointId} failed for good after ${delivery.attempt} attempt(s): ${response.ok ? '' : response.error}`);
      }
    } catch (error) {
      // The attempt's outcome could not be recorded: the lease runs out and the delivery is sent again.
      this.logger.error(`Recording webhook delivery ${delivery.id} failed; it will be sent again: ${describeError(error)}`);
    } finally {
      const left = (this.inFlightByEndpoint.get(delivery.endpointId) ?? 1) - 1;
      if (left === 0) this.inFlightByEndpoint.delete(delivery.endpointId);
      else this.inFlightByEndpoint.set(delivery.endpointId, left);
    }
  }

  /** One attempt, name lookup included, within WEBHOOK_TIMEOUT_MS (so within the lease). */
  private async send(delivery: ClaimedDelivery): Promise<WebhookResponse> {
    const body = JSON.stringify(delivery.event);
    const deadline = Date.now() + this.config.timeoutMs;
    try {
      const url = new URL(delivery.url);
      // Resolved at each attempt and pinned for it: a name that now points inside the network is refused.
      const address = await withDeadline(resolveWebhookAddress(url, this.config.allowPrivateNetworks), deadline, `no address for ${url.hostname}`);
      const headers = webhookHeaders(delivery.secrets, delivery.event.id, Math.floor(Date.now() / 1000), body);
      // traceparent of the attempt's span (nothing when tracing is off).
      propagation.inject(context.active(), headers);
      const timeoutMs = Math.max(1, deadline - Date.now());
      return await sendWebhook({ url, address, headers, body, timeoutMs, maxResponseBytes: MAX_RESPONSE_BYTES });
    } catch (error) {
      return { ok: false, error: describeError(error) };
    }
  }

  /** The delay before the next attempt after failed attempt number `attempt`, or null when it was the last. */
  private retryDelayMs(attempt: number): number | null {
    const base = this.config.retryScheduleMs[attempt - 1];
    if (base === undefined) return null;
    return Math.round(base * (1 - RETRY_JITTER + Math.random() * 2 * RETRY_JITTER));
  }
}

/** `promise`, or a rejection once `deadline` passes (the lookup itself cannot be cancelled; it is left to finish). */
async function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within the attempt's time`)), Math.max(0, deadline - Date.now()));
  });
  try {
    return await Promise.race([promise, expired]);
  } finally {
    clearTimeout(timer);
  }
}
