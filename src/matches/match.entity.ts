import { Check, Column, CreateDateColumn, Entity, Index, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/**
 * Schema of a match. The counters are kept on the row so that a booking locks one row and
 * reads availability without summing bookings; the CHECK constraints refuse overbooking even
 * if application code is wrong.
 */
@Entity({ name: 'matches' })
@Check('matches_capacity_non_negative', '"capacity" >= 0')
@Check('matches_booked_slots_within_capacity', '"booked_slots" >= 0 AND "held_slots" >= 0 AND "booked_slots" + "held_slots" <= "capacity"')
@Check('matches_title_length', 'char_length("title") BETWEEN 1 AND 200')
@Check('matches_max_slots_per_customer_positive', '"max_slots_per_customer" > 0')
@Check('matches_waiting_entries_non_negative', '"waiting_entries" >= 0')
// Created by the migrations: TypeORM misreads the column order of multi-column indexes.
@Index('matches_starts_at_id_idx', { synchronize: false }) // (starts_at, id)
export class MatchEntity {
  @PrimaryGeneratedColumn('uuid', { primaryKeyConstraintName: 'matches_pkey' })
  id!: string;

  @Column({ type: 'text' })
  title!: string;

  @Column({ name: 'starts_at', type: 'timestamptz' })
  startsAt!: Date;

  @Column({ type: 'integer' })
  capacity!: number;

  @Column({ name: 'booked_slots', type: 'integer', default: 0 })
  bookedSlots!: number;

  /** Slots of active holds, including expired ones not released yet. */
  @Column({ name: 'held_slots', type: 'integer', default: 0 })
  heldSlots!: number;

  /** The most slots one customer may have in the match (confirmed bookings and live holds); null: no limit. */
  @Column({ name: 'max_slots_per_customer', type: 'integer', nullable: true })
  maxSlotsPerCustomer!: number | null;

  /** Waitlist entries still waiting for an offer; while there are any, free slots are theirs. */
  @Column({ name: 'waiting_entries', type: 'integer', default: 0 })
  waitingEntries!: number;

  @CreateDateColumn({ name: 'created_at', type: 'timestamptz' })
  createdAt!: Date;

  @UpdateDateColumn({ name: 'updated_at', type: 'timestamptz' })
  updatedAt!: Date;
}
