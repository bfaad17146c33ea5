import { Check, Column, CreateDateColumn, Entity, Index, PrimaryColumn } from 'typeorm';

/** Schema of an idempotency record (see the AddIdempotencyKeys migration). */
@Entity({ name: 'idempotency_keys' })
@Check('idempotency_keys_key_length', 'char_length("key") BETWEEN 1 AND 255')
@Check('idempotency_keys_status_success', '"response_status" BETWEEN 200 AND 299')
@Index('idempotency_keys_expires_at_idx', { synchronize: false }) // (expires_at)
export class IdempotencyKeyEntity {
  @PrimaryColumn({ name: 'customer_id', type: 'text', primaryKeyConstraintName: 'idempotency_keys_pkey' })
  customerId!: string;

  @PrimaryColumn({ type: 'text', primaryKeyConstraintName: 'idempotency_keys_pkey' })
  endpoint!: string;

  @PrimaryColumn({ type: 'text', primaryKeyConstraintName: 'idempotency_keys_pkey' })
  key!: string;

  @Column({ name: 'request_hash', type: 'text' })
  requestHash!: string;

  @Column({ name: 'response_status', type: 'integer' })
  responseStatus!: number;

  @Column({ name: 'response_body', type: 'jsonb' })
  responseBody!: unknown;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;
}
