import { Check, Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { BookingEntity } from '../bookings/booking.entity';
import { MatchEntity } from '../matches/match.entity';

export const HOLD_STATUSES = ['active', 'confirmed', 'released', 'expired'] as const;
export type HoldStatus = (typeof HOLD_STATUSES)[number];

/** Schema of a hold; its partial indexes are created by the migration (synchronize: false). */
@Entity({ name: 'holds' })
@Check('holds_slots_positive', '"slots" > 0')
@Check('holds_status_known', `"status" IN ('active', 'confirmed', 'released', 'expired')`)
@Check('holds_resolved_at_matches_status', `("status" = 'active') = ("resolved_at" IS NULL)`)
@Check('holds_booking_id_matches_status', `("status" = 'confirmed') = ("booking_id" IS NOT NULL)`)
@Check('holds_customer_id_length', 'char_length("customer_id") BETWEEN 1 AND 200')
@Index('holds_active_match_expiry_idx', { synchronize: false }) // (match_id, expires_at) WHERE status = 'active'
@Index('holds_active_expiry_idx', { synchronize: false }) // (expires_at) WHERE status = 'active'
@Index('holds_active_match_customer_idx', { synchronize: false }) // (match_id, customer_id) WHERE status = 'active'
@Index('holds_booking_id_key', { synchronize: false }) // UNIQUE (booking_id) WHERE booking_id IS NOT NULL
export class HoldEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'holds_pkey' })
  id!: string;

  @Column({ name: 'match_id', type: 'uuid' })
  matchId!: string;

  @ManyToOne(() => MatchEntity, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'match_id', foreignKeyConstraintName: 'holds_match_id_fkey' })
  match?: MatchEntity;

  @Column({ name: 'customer_id', type: 'text' })
  customerId!: string;

  @Column({ type: 'integer' })
  slots!: number;

  @Column({ type: 'text', default: 'active' })
  status!: HoldStatus;

  @Column({ name: 'expires_at', type: 'timestamptz' })
  expiresAt!: Date;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'resolved_at', type: 'timestamptz', nullable: true })
  resolvedAt!: Date | null;

  @Column({ name: 'booking_id', type: 'uuid', nullable: true })
  bookingId!: string | null;

  @ManyToOne(() => BookingEntity, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn({ name: 'booking_id', foreignKeyConstraintName: 'holds_booking_id_fkey' })
  booking?: BookingEntity;
}
