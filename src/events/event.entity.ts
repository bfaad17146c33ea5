import { Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, Unique } from 'typeorm';

/** Schema of an outbox event (see the AddEventsAndWebhooks migration). */
@Entity({ name: 'events' })
@Unique('events_id_key', ['id'])
@Index('events_feed_idx', { synchronize: false }) // (transaction_id, position)
@Index('events_occurred_at_idx', { synchronize: false }) // (occurred_at)
export class EventEntity {
  @PrimaryGeneratedColumn('increment', { type: 'bigint', primaryKeyConstraintName: 'events_pkey' })
  position!: string;

  @Column({ type: 'uuid' })
  id!: string;

  @Column({ name: 'transaction_id', type: 'bigint' })
  transactionId!: string;

  @Column({ type: 'text' })
  type!: string;

  @CreateDateColumn({ name: 'occurred_at', type: 'timestamptz' })
  occurredAt!: Date;

  @Column({ type: 'jsonb' })
  data!: unknown;
}

/** Where a reader of the event feed inside the service (the webhook dispatcher) has got to. */
@Entity({ name: 'event_cursors' })
export class EventCursorEntity {
  @Column({ type: 'text', primary: true, primaryKeyConstraintName: 'event_cursors_pkey' })
  name!: string;

  @Column({ name: 'transaction_id', type: 'bigint' })
  transactionId!: string;

  @Column({ type: 'bigint' })
  position!: string;
}
