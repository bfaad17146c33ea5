import { Check, Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn, Unique } from 'typeorm';
import { EventEntity } from '../events/event.entity';

/** Schema of a webhook endpoint (see the AddEventsAndWebhooks migration). */
@Entity({ name: 'webhook_endpoints' })
@Check('webhook_endpoints_url_length', 'char_length("url") BETWEEN 1 AND 2000')
export class WebhookEndpointEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'webhook_endpoints_pkey' })
  id!: string;

  @Column({ type: 'text' })
  url!: string;

  @Column({ name: 'event_types', type: 'text', array: true, nullable: true })
  eventTypes!: string[] | null;

  @Column({ type: 'text' })
  secret!: string;

  @Column({ name: 'previous_secret', type: 'text', nullable: true })
  previousSecret!: string | null;

  @Column({ name: 'previous_secret_expires_at', type: 'timestamptz', nullable: true })
  previousSecretExpiresAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;
}

export const DELIVERY_STATUSES = ['pending', 'delivered', 'failed'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Schema of one event's delivery to one endpoint. */
@Entity({ name: 'webhook_deliveries' })
@Unique('webhook_deliveries_event_endpoint_key', ['eventPosition', 'endpointId'])
@Check('webhook_deliveries_status_known', `"status" IN ('pending', 'delivered', 'failed')`)
@Index('webhook_deliveries_due_idx', { synchronize: false }) // (next_attempt_at) WHERE status = 'pending'
@Index('webhook_deliveries_endpoint_idx', { synchronize: false }) // (endpoint_id, created_at)
export class WebhookDeliveryEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'webhook_deliveries_pkey' })
  id!: string;

  @Column({ name: 'event_position', type: 'bigint' })
  eventPosition!: string;

  @ManyToOne(() => EventEntity, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'event_position', referencedColumnName: 'position', foreignKeyConstraintName: 'webhook_deliveries_event_position_fkey' })
  event?: EventEntity;

  @Column({ name: 'endpoint_id', type: 'uuid' })
  endpointId!: string;

  @ManyToOne(() => WebhookEndpointEntity, { onDelete: 'CASCADE', nullable: false })
  @JoinColumn({ name: 'endpoint_id', foreignKeyConstraintName: 'webhook_deliveries_endpoint_id_fkey' })
  endpoint?: WebhookEndpointEntity;

  @Column({ type: 'text', default: 'pending' })
  status!: DeliveryStatus;

  @Column({ type: 'integer', default: 0 })
  attempts!: number;

  @Column({ name: 'next_attempt_at', type: 'timestamptz', default: () => 'now()' })
  nextAttemptAt!: Date;

  @Column({ name: 'leased_until', type: 'timestamptz', nullable: true })
  leasedUntil!: Date | null;

  @Column({ name: 'last_status', type: 'integer', nullable: true })
  lastStatus!: number | null;

  @Column({ name: 'last_error', type: 'text', nullable: true })
  lastError!: string | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'delivered_at', type: 'timestamptz', nullable: true })
  deliveredAt!: Date | null;
}
