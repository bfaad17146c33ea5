import { Check, Column, CreateDateColumn, Entity, Generated, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn } from 'typeorm';
import { HoldEntity } from '../holds/hold.entity';
import { MatchEntity } from '../matches/match.entity';

export const WAITLIST_STATUSES = ['waiting', 'offered', 'accepted', 'declined', 'expired', 'left'] as const;
export type WaitlistStatus = (typeof WAITLIST_STATUSES)[number];

/** Schema of a waitlist entry; its indexes are created by the AddWaitlist migration (synchronize: false). */
@Entity({ name: 'waitlist_entries' })
@Check('waitlist_entries_slots_positive', '"slots" > 0')
@Check('waitlist_entries_status_known', `"status" IN ('waiting', 'offered', 'accepted', 'declined', 'expired', 'left')`)
@Check('waitlist_entries_resolved_at_matches_status', `("status" IN ('waiting', 'offered')) = ("resolved_at" IS NULL)`)
// An expired entry has no hold when it expired unoffered (the capacity fell below its slots).
@Check(
  'waitlist_entries_hold_id_matches_status',
  `("status" IN ('offered', 'accepted', 'declined') AND "hold_id" IS NOT NULL) OR ("status" IN ('waiting', 'left') AND "hold_id" IS NULL) OR "status" = 'expired'`,
)
@Check('waitlist_entries_expires_at_with_hold', `("hold_id" IS NULL) = ("expires_at" IS NULL)`)
@Check('waitlist_entries_customer_id_length', 'char_length("customer_id") BETWEEN 1 AND 200')
@Index('waitlist_entries_open_key', { synchronize: false }) // UNIQUE (match_id, customer_id) WHERE status IN ('waiting', 'offered')
@Index('waitlist_entries_line_idx', { synchronize: false }) // (match_id, line_number) WHERE status = 'waiting'
@Index('waitlist_entries_customer_created_idx', { synchronize: false }) // (customer_id, created_at, id)
@Index('waitlist_entries_match_created_idx', { synchronize: false }) // (match_id, created_at, id)
@Index('waitlist_entries_created_idx', { synchronize: false }) // (created_at, id)
@Index('waitlist_entries_hold_id_key', { synchronize: false }) // UNIQUE (hold_id) WHERE hold_id IS NOT NULL
export class WaitlistEntryEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'waitlist_entries_pkey' })
  id!: string;

  /** The order of the line: taken under the match row lock, so it is the order entries joined in. */
  @Column({ name: 'line_number', type: 'bigint' })
  @Generated('increment')
  lineNumber!: string;

  @Column({ name: 'match_id', type: 'uuid' })
  matchId!: string;

  @ManyToOne(() => MatchEntity, { onDelete: 'RESTRICT', nullable: false })
  @JoinColumn({ name: 'match_id', foreignKeyConstraintName: 'waitlist_entries_match_id_fkey' })
  match?: MatchEntity;

  @Column({ name: 'customer_id', type: 'text' })
  customerId!: string;

  @Column({ type: 'integer' })
  slots!: number;

  @Column({ type: 'text', default: 'waiting' })
  status!: WaitlistStatus;

  @Column({ name: 'hold_id', type: 'uuid', nullable: true })
  holdId!: string | null;

  @ManyToOne(() => HoldEntity, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn({ name: 'hold_id', foreignKeyConstraintName: 'waitlist_entries_hold_id_fkey' })
  hold?: HoldEntity;

  /** The offer's expiry: a copy of its hold's. */
  @Column({ name: 'expires_at', type: 'timestamptz', nullable: true })
  expiresAt!: Date | null;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @Column({ name: 'resolved_at', type: 'timestamptz', nullable: true })
  resolvedAt!: Date | null;
}
