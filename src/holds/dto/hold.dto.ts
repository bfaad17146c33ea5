import { ApiProperty } from '@nestjs/swagger';
import { HOLD_STATUSES, type HoldStatus } from '../hold.entity';

export { CreateBookingDto as CreateHoldDto } from '../../bookings/dto/booking.dto';

export class HoldResponse {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) matchId!: string;
  @ApiProperty() customerId!: string;
  @ApiProperty() slots!: number;
  @ApiProperty({ enum: HOLD_STATUSES }) status!: HoldStatus;
  @ApiProperty({ format: 'date-time', description: 'After this the hold no longer counts and cannot be confirmed (410)' }) expiresAt!: string;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) resolvedAt!: string | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'The booking a confirmed hold became' }) bookingId!: string | null;
}
