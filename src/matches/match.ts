/** A match as the service sees it. */
export interface Match {
  id: string;
  title: string;
  startsAt: Date;
  capacity: number;
  bookedSlots: number;
  createdAt: Date;
  updatedAt: Date;
}

/** The API representation, with the derived availability. */
export interface MatchView extends Match {
  availableSlots: number;
}

export function toMatchView(match: Match): MatchView {
  return { ...match, availableSlots: match.capacity - match.bookedSlots };
}
