import { Check, Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { MatchEntity } from '../matches/match.entity';

export const BOOKING_STATUSES = ['confirmed', 'cancelled'] as const;
export type BookingStatus = (typeof BOOKING_STATUSES)[number];

/**
 * Schema of a booking. Indexes follow the list queries in bookings.repository.ts; they are
 * created by the migrations (synchronize: false, as TypeORM misreads multi-column index order).
 */
@Entity({ name: 'bookings' })
@Check('bookings_slots_positive', '"slots" > 0')
@Check('bookings_status_known', `"status" IN ('confirmed', 'cancelled')`)
@Check('bookings_cancelled_at_matches_status', `("status" = 'cancelled') = ("cancelled_at" IS NOT NULL)`)
@Check('bookings_customer_id_length', 'char_length("customer_id") BETWEEN 1 AND 200')
@Index('bookings_customer_created_idx', { synchronize: false }) // ['customerId', 'createdAt', 'id']
@Index('bookings_match_created_idx', { synchronize: false }) // ['matchId', 'createdAt', 'id']
@Index('bookings_created_idx', { synchronize: false }) // ['createdAt', 'id']
@Index('bookings_confirmed_match_customer_idx', { synchronize: false }) // (match_id, customer_id) WHERE status = 'confirmed'
export class BookingEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'bookings_pkey' })
  id!: string;

  @Column({ name: 'match_id', type: 'uuid' })
  matchId!: string;

  @ManyToOne(() => MatchEntity, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'match_id', foreignKeyConstraintName: 'bookings_match_id_fkey' })
  match?: MatchEntity;

  @Column({ name: 'customer_id', type: 'text' })
  customerId!: string;

  @Column({ type: 'integer' })
  slots!: number;

  @Column({ type: 'text', default: 'confirmed' })
  status!: BookingStatus;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'cancelled_at', type: 'timestamptz', nullable: true })
  cancelledAt!: Date | null;
}
