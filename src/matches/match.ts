/** A match as the service sees it. */
export interface Match {
  id: string;
  title: string;
  startsAt: Date;
  capacity: number;
  bookedSlots: number;
  /** The held counter: slots of active holds, including expired ones not released yet. */
  heldSlots: number;
  /** Slots of holds that are active and unexpired now. */
  liveHeldSlots: number;
  createdAt: Date;
  updatedAt: Date;
}

/** The API representation: held slots are the live ones, and availability is derived. */
export interface MatchView {
  id: string;
  title: string;
  startsAt: Date;
  capacity: number;
  bookedSlots: number;
  heldSlots: number;
  availableSlots: number;
  createdAt: Date;
  updatedAt: Date;
}

export function toMatchView(match: Match): MatchView {
  return {
    id: match.id,
    title: match.title,
    startsAt: match.startsAt,
    capacity: match.capacity,
    bookedSlots: match.bookedSlots,
    heldSlots: match.liveHeldSlots,
    // An expired hold never counts against availability, swept or not.
    availableSlots: match.capacity - match.bookedSlots - match.liveHeldSlots,
    createdAt: match.createdAt,
    updatedAt: match.updatedAt,
  };
}
