import type { BookingStatus } from './booking.entity';

export interface Booking {
  id: string;
  matchId: string;
  customerId: string;
  slots: number;
  status: BookingStatus;
  createdAt: Date;
  cancelledAt: Date | null;
}

/** Who is asking: the JWT's subject, and whether it carries the admin role. */
export interface Caller {
  customerId: string;
  isAdmin: boolean;
}
