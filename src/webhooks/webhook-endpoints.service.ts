import { Inject, Injectable } from '@nestjs/common';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { WebhookDeliveryNotFoundError, WebhookEndpointNotFoundError } from '../errors/domain-errors';
import { RequestValidationError } from '../errors/request-validation';
import type { EventType } from '../events/event-types';
import { checkWebhookUrl, WebhookUrlError } from './outbound-address';
import { generateWebhookSecret } from './webhook-signature';
import type { DeliveryStatus } from './webhook.entity';
import { type WebhookDelivery, type WebhookEndpoint, WebhooksRepository } from './webhooks.repository';

/** An endpoint as answered on creation and rotation: the only answers that carry its secret. */
export interface WebhookEndpointWithSecret extends WebhookEndpoint {
  secret: string;
}

/** The admin side of webhooks: endpoints, their secrets, their deliveries. */
@Injectable()
export class WebhookEndpointsService {
  constructor(
    private readonly webhooks: WebhooksRepository,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'webhooks'>,
  ) {}

  async create(url: string, eventTypes: EventType[] | undefined): Promise<WebhookEndpointWithSecret> {
    const checked = this.checkUrl(url);
    const secret = generateWebhookSecret();
    const endpoint = await this.webhooks.insertEndpoint({ url: checked.href, eventTypes: eventTypes ?? null, secret });
    return { ...endpoint, secret };
  }

  list(): Promise<WebhookEndpoint[]> {
    return this.webhooks.listEndpoints();
  }

  async get(id: string): Promise<WebhookEndpoint> {
    const endpoint = await this.webhooks.findEndpoint(id);
    if (!endpoint) throw new WebhookEndpointNotFoundError(id);
    return endpoint;
  }

  async delete(id: string): Promise<void> {
    if (!(await this.webhooks.deleteEndpoint(id))) throw new WebhookEndpointNotFoundError(id);
  }

  /** A new secret; the previous one keeps signing beside it for WEBHOOK_SECRET_ROTATION_GRACE_MS, so receivers can switch without losing a delivery. */
  async rotateSecret(id: string): Promise<WebhookEndpointWithSecret> {
    const secret = generateWebhookSecret();
    const endpoint = await this.webhooks.rotateSecret(id, secret, this.config.webhooks.secretRotationGraceMs);
    if (!endpoint) throw new WebhookEndpointNotFoundError(id);
    return { ...endpoint, secret };
  }

  async deliveries(endpointId: string, status: DeliveryStatus | undefined, limit: number): Promise<WebhookDelivery[]> {
    await this.get(endpointId);
    return this.webhooks.listDeliveries(endpointId, status, limit);
  }

  async redeliver(deliveryId: string): Promise<WebhookDelivery> {
    const delivery = await this.webhooks.redeliver(deliveryId);
    if (!delivery) throw new WebhookDeliveryNotFoundError(deliveryId);
    return delivery;
  }

  private checkUrl(url: string): URL {
    try {
      return checkWebhookUrl(url, this.config.webhooks.allowPrivateNetworks);
    } catch (error) {
      if (error instanceof WebhookUrlError) throw new RequestValidationError([{ field: 'url', message: error.message }]);
      throw error;
    }
  }
}
