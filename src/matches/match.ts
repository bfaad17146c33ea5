/** A match as the service reads it. */
export interface Match {
  id: string;
  title: string;
  startsAt: Date;
  capacity: number;
  bookedSlots: number;
  /** Slots of live holds (active and unexpired), whether or not expired ones were released yet. */
  heldSlots: number;
  createdAt: Date;
  updatedAt: Date;
}

/**
 * The counters of a match whose row is locked: what a write needs to decide. heldSlots is the
 * stored counter, which may still include expired holds (see holds/slot-availability.ts).
 */
export interface LockedMatch {
  id: string;
  capacity: number;
  bookedSlots: number;
  heldSlots: number;
}

/** The API representation, with the derived availability. */
export interface MatchView extends Match {
  availableSlots: number;
}

export function toMatchView(match: Match): MatchView {
  // An expired hold never counts against availability, swept or not.
  return { ...match, availableSlots: match.capacity - match.bookedSlots - match.heldSlots };
}
