import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsInt, IsOptional, IsUUID, Max, Min } from 'class-validator';
import { PageQueryDto } from '../../http/page-query.dto';
import { BOOKING_STATUSES, type BookingStatus } from '../booking.entity';

export class CreateBookingDto {
  @ApiProperty({ example: 2, minimum: 1, description: 'At most BOOKING_MAX_SLOTS (default 10)' })
  @IsInt()
  @Min(1)
  @Max(10_000)
  slots!: number;
}

export class RescheduleBookingDto {
  @ApiProperty({ format: 'uuid', description: 'The match to move the booking to' })
  @IsUUID('all')
  toMatchId!: string;
}

export class ListBookingsQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all')
  matchId?: string;

  @ApiPropertyOptional({ enum: BOOKING_STATUSES })
  @IsOptional()
  @IsIn(BOOKING_STATUSES)
  status?: BookingStatus;
}

export class BookingResponse {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) matchId!: string;
  @ApiProperty() customerId!: string;
  @ApiProperty() slots!: number;
  @ApiProperty({ enum: BOOKING_STATUSES }) status!: BookingStatus;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) cancelledAt!: string | null;
}

export class BookingPageResponse {
  @ApiProperty({ type: [BookingResponse] }) items!: BookingResponse[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
