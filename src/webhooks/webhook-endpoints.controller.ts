import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { ArrayMaxSize, ArrayUnique, IsArray, IsIn, IsOptional, IsString, MaxLength } from 'class-validator';
import { AdminOnly } from '../auth/auth.decorators';
import { ApiProblems } from '../errors/api-problems.decorator';
import { uuidPipe } from '../errors/request-validation';
import { EVENT_TYPES, type EventType } from '../events/event-types';
import { IsQueryInt } from '../http/validators';
import { WebhookEndpointsService, type WebhookEndpointWithSecret } from './webhook-endpoints.service';
import { DELIVERY_STATUSES, type DeliveryStatus } from './webhook.entity';
import type { WebhookDelivery, WebhookEndpoint } from './webhooks.repository';

export class CreateWebhookEndpointDto {
  @ApiProperty({ example: 'https://hooks.example.com/match-booking', description: 'http(s); private, loopback and link-local addresses are refused unless WEBHOOK_ALLOW_PRIVATE_NETWORKS=true' })
  @IsString()
  @MaxLength(2000)
  url!: string;

  @ApiPropertyOptional({ enum: EVENT_TYPES, isArray: true, description: 'The event types to send; absent: all' })
  @IsOptional()
  @IsArray()
  @ArrayUnique()
  @ArrayMaxSize(EVENT_TYPES.length)
  @IsIn(EVENT_TYPES, { each: true })
  eventTypes?: EventType[];
}

export class DeliveriesQueryDto {
  @ApiPropertyOptional({ enum: DELIVERY_STATUSES })
  @IsOptional()
  @IsIn(DELIVERY_STATUSES)
  status?: DeliveryStatus;

  @ApiPropertyOptional({ minimum: 1, maximum: 500, default: 50 })
  @IsOptional()
  @IsQueryInt(1, 500)
  limit?: number;
}

export class WebhookEndpointResponse {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() url!: string;
  @ApiProperty({ enum: EVENT_TYPES, isArray: true, nullable: true, description: 'null: all event types' }) eventTypes!: string[] | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'Until when the previous secret also signs, after a rotation' })
  previousSecretExpiresAt!: string | null;
}

export class WebhookEndpointWithSecretResponse extends WebhookEndpointResponse {
  @ApiProperty({ example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', description: 'Shown only here: store it to verify signatures' }) secret!: string;
}

export class WebhookEndpointListResponse {
  @ApiProperty({ type: [WebhookEndpointResponse] }) items!: WebhookEndpointResponse[];
}

export class WebhookDeliveryResponse {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid', description: 'The event, and the webhook-id of every attempt' }) eventId!: string;
  @ApiProperty({ enum: EVENT_TYPES }) eventType!: string;
  @ApiProperty({ format: 'uuid' }) endpointId!: string;
  @ApiProperty({ enum: DELIVERY_STATUSES }) status!: string;
  @ApiProperty() attempts!: number;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) nextAttemptAt!: string | null;
  @ApiProperty({ type: Number, nullable: true, description: 'HTTP status of the last attempt' }) lastStatus!: number | null;
  @ApiProperty({ type: String, nullable: true }) lastError!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) deliveredAt!: string | null;
}

export class WebhookDeliveryListResponse {
  @ApiProperty({ type: [WebhookDeliveryResponse] }) items!: WebhookDeliveryResponse[];
}

@ApiTags('admin')
@ApiBearerAuth()
@ApiProblems(401, 403)
@Controller('admin')
export class WebhookEndpointsController {
  constructor(private readonly endpoints: WebhookEndpointsService) {}

  @Post('webhook-endpoints')
  @AdminOnly()
  @ApiOperation({ summary: 'Register a webhook endpoint; the answer carries its signing secret, shown only here (admin)' })
  @ApiCreatedResponse({ type: WebhookEndpointWithSecretResponse })
  @ApiProblems(400, 413, 415)
  create(@Body() body: CreateWebhookEndpointDto): Promise<WebhookEndpointWithSecret> {
    return this.endpoints.create(body.url, body.eventTypes);
  }

  @Get('webhook-endpoints')
  @AdminOnly()
  @ApiOperation({ summary: 'List the webhook endpoints, oldest first (admin)' })
  @ApiOkResponse({ type: WebhookEndpointListResponse })
  async list(): Promise<{ items: WebhookEndpoint[] }> {
    return { items: await this.endpoints.list() };
  }

  @Get('webhook-endpoints/:id')
  @AdminOnly()
  @ApiOperation({ summary: 'Get a webhook endpoint (admin)' })
  @ApiOkResponse({ type: WebhookEndpointResponse })
  @ApiProblems(400, 404)
  get(@Param('id', uuidPipe('id')) id: string): Promise<WebhookEndpoint> {
    return this.endpoints.get(id);
  }

  @Delete('webhook-endpoints/:id')
  @HttpCode(204)
  @AdminOnly()
  @ApiOperation({ summary: 'Remove a webhook endpoint and its deliveries (admin)' })
  @ApiNoContentResponse()
  @ApiProblems(400, 404)
  delete(@Param('id', uuidPipe('id')) id: string): Promise<void> {
    return this.endpoints.delete(id);
  }

  @Post('webhook-endpoints/:id/rotate-secret')
  @HttpCode(200)
  @AdminOnly()
  @ApiOperation({ summary: 'Give the endpoint a new secret; the previous one still signs beside it for WEBHOOK_SECRET_ROTATION_GRACE_MS (admin)' })
  @ApiOkResponse({ type: WebhookEndpointWithSecretResponse })
  @ApiProblems(400, 404)
  rotateSecret(@Param('id', uuidPipe('id')) id: string): Promise<WebhookEndpointWithSecret> {
    return this.endpoints.rotateSecret(id);
  }

  @Get('webhook-endpoints/:id/deliveries')
  @AdminOnly()
  @ApiOperation({ summary: "The endpoint's deliveries, newest first, optionally by status (admin)" })
  @ApiOkResponse({ type: WebhookDeliveryListResponse })
  @ApiProblems(400, 404)
  async deliveries(@Param('id', uuidPipe('id')) id: string, @Query() query: DeliveriesQueryDto): Promise<{ items: WebhookDelivery[] }> {
    return { items: await this.endpoints.deliveries(id, query.status, query.limit ?? 50) };
  }

  @Post('webhook-deliveries/:id/redeliver')
  @HttpCode(200)
  @AdminOnly()
  @ApiOperation({ summary: 'Send a delivery again from its first attempt, whatever its status (admin)' })
  @ApiOkResponse({ type: WebhookDeliveryResponse })
  @ApiProblems(400, 404)
  redeliver(@Param('id', uuidPipe('id')) id: string): Promise<WebhookDelivery> {
    return this.endpoints.redeliver(id);
  }
}
