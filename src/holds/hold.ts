import type { HoldStatus } from './hold.entity';

export interface Hold {
  id: string;
  matchId: string;
  customerId: string;
  slots: number;
  status: HoldStatus;
  expiresAt: Date;
  createdAt: Date;
  resolvedAt: Date | null;
  bookingId: string | null;
}
