import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';

export class FieldErrorResponse {
  @ApiProperty({ example: 'slots' }) field!: string;
  @ApiProperty({ example: 'slots must not be less than 1' }) message!: string;
}

/** RFC 9457 problem details, as every error answer of this API is shaped. */
export class ProblemResponse {
  @ApiProperty({ example: '/problems/insufficient-slots', description: 'about:blank for plain HTTP errors' }) type!: string;
  @ApiProperty({ example: 'Not enough slots left' }) title!: string;
  @ApiProperty({ example: 409 }) status!: number;
  @ApiProperty() detail!: string;
  @ApiPropertyOptional({ example: '/api/v1/matches/3b0c.../bookings' }) instance?: string;
  @ApiPropertyOptional({ description: 'insufficient-slots: slots still available' }) availableSlots?: number;
  @ApiPropertyOptional({ description: 'insufficient-slots: slots asked for' }) requestedSlots?: number;
  @ApiPropertyOptional({ description: 'capacity-below-booked: slots already booked' }) bookedSlots?: number;
  @ApiPropertyOptional({ description: '503 and 429 answers: seconds to wait (also in Retry-After)' }) retryAfterSeconds?: number;
  @ApiPropertyOptional({ description: 'outcome-unknown for a booking, booking-not-found, booking-not-confirmed, hold-not-active: the booking' }) bookingId?: string;
  @ApiPropertyOptional({ description: 'outcome-unknown for a hold, hold-not-found, hold-expired, hold-not-active: the hold' }) holdId?: string;
  @ApiPropertyOptional({ enum: ['customer', 'ip'], description: 'rate-limited: the limit that was reached' }) limit?: string;
  @ApiPropertyOptional({ type: [FieldErrorResponse], description: 'validation-failed: one entry per bad field' })
  errors?: FieldErrorResponse[];
}
