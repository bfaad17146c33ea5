import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsIn, IsOptional, IsUUID } from 'class-validator';
import { PageQueryDto } from '../../http/page-query.dto';
import { WAITLIST_STATUSES, type WaitlistStatus } from '../waitlist-entry.entity';

export { CreateBookingDto as JoinWaitlistDto } from '../../bookings/dto/booking.dto';

export class ListWaitlistQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ format: 'uuid' })
  @IsOptional()
  @IsUUID('all')
  matchId?: string;

  @ApiPropertyOptional({ enum: WAITLIST_STATUSES })
  @IsOptional()
  @IsIn(WAITLIST_STATUSES)
  status?: WaitlistStatus;
}

export class WaitlistEntryResponse {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty({ format: 'uuid' }) matchId!: string;
  @ApiProperty() customerId!: string;
  @ApiProperty() slots!: number;
  @ApiProperty({
    enum: WAITLIST_STATUSES,
    description: 'waiting; offered (holdId is a hold for the slots: confirm it before expiresAt); accepted (the hold was confirmed); declined (released); expired; left',
  })
  status!: WaitlistStatus;
  @ApiProperty({ type: Number, nullable: true, description: 'Place in the line while waiting (1: offered next)' }) position!: number | null;
  @ApiProperty({ type: String, format: 'uuid', nullable: true, description: 'The hold of the offer' }) holdId!: string | null;
  @ApiProperty({ type: String, format: 'date-time', nullable: true, description: 'When the offer runs out' }) expiresAt!: string | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ type: String, format: 'date-time', nullable: true }) resolvedAt!: string | null;
}

export class WaitlistPageResponse {
  @ApiProperty({ type: [WaitlistEntryResponse] }) items!: WaitlistEntryResponse[];
  @ApiProperty({ type: String, nullable: true }) nextCursor!: string | null;
}
