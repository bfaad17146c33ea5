import { availableSlots } from '../inventory/slot-counters';

/** A match as the service reads it. */
export interface Match {
  id: string;
  title: string;
  startsAt: Date;
  capacity: number;
  /** The most slots one customer may have in the match; null: no limit. */
  maxSlotsPerCustomer: number | null;
  bookedSlots: number;
  /** The live held slots (active and unexpired holds), whether or not expired ones were released yet. */
  heldSlots: number;
  /** Waitlist entries still waiting for an offer. */
  waitingEntries: number;
  createdAt: Date;
  updatedAt: Date;
}

/** The API representation, with the derived availability. */
export interface MatchView extends Match {
  availableSlots: number;
}

export function toMatchView(match: Match): MatchView {
  // heldSlots is the live figure: an expired hold never counts against availability, swept or not.
  return { ...match, availableSlots: availableSlots(match) };
}
