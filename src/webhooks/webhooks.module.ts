import { Module } from '@nestjs/common';
import { WebhookDispatcher } from './webhook-dispatcher';
import { WebhookEndpointsController } from './webhook-endpoints.controller';
import { WebhookEndpointsService } from './webhook-endpoints.service';
import { WebhookRelay } from './webhook-relay';
import { WebhooksRepository } from './webhooks.repository';

/** Standard Webhooks deliveries of the outbox's events: endpoints (admin API), dispatch (one instance), relay (every instance). */
@Module({
  controllers: [WebhookEndpointsController],
  providers: [WebhooksRepository, WebhookEndpointsService, WebhookDispatcher, WebhookRelay],
})
export class WebhooksModule {}
