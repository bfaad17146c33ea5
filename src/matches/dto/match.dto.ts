import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsNotEmpty, IsOptional, IsString, Matches, Max, MaxLength, Min, ValidateIf } from 'class-validator';
import { PageQueryDto } from '../../http/page-query.dto';
import { HasNoNulCharacter, IsOmittable, IsZonedDateTime } from '../../http/validators';

export const MAX_CAPACITY = 1_000_000;

export class CreateMatchDto {
  @ApiProperty({ example: 'Final: Lions vs Tigers', minLength: 1, maxLength: 200 })
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  @Matches(/\S/, { message: 'title must contain a visible character' })
  @HasNoNulCharacter()
  title!: string;

  @ApiProperty({ example: '2026-12-01T18:30:00Z', format: 'date-time' })
  @IsZonedDateTime()
  startsAt!: string;

  @ApiProperty({ example: 100, minimum: 0, maximum: MAX_CAPACITY })
  @IsInt()
  @Min(0)
  @Max(MAX_CAPACITY)
  capacity!: number;

  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 1, maximum: MAX_CAPACITY, description: 'The most slots one customer may have in the match (bookings and live holds); null or absent: no limit' })
  @IsOptional()
  @IsInt()
  @Min(1)
  @Max(MAX_CAPACITY)
  maxSlotsPerCustomer?: number | null;
}

export class UpdateMatchDto {
  @ApiPropertyOptional({ minLength: 1, maxLength: 200 })
  @IsOmittable()
  @IsString()
  @IsNotEmpty()
  @MaxLength(200)
  @Matches(/\S/, { message: 'title must contain a visible character' })
  @HasNoNulCharacter()
  title?: string;

  @ApiPropertyOptional({ format: 'date-time' })
  @IsOmittable()
  @IsZonedDateTime()
  startsAt?: string;

  @ApiPropertyOptional({ minimum: 0, maximum: MAX_CAPACITY, description: 'Cannot go below the slots already booked (409).' })
  @IsOmittable()
  @IsInt()
  @Min(0)
  @Max(MAX_CAPACITY)
  capacity?: number;

  @ApiPropertyOptional({ type: Number, nullable: true, minimum: 1, maximum: MAX_CAPACITY, description: 'null removes the limit. Lowering it below what a customer already has is allowed: it only stops new takes.' })
  @ValidateIf((_object: object, value: unknown) => value !== undefined && value !== null)
  @IsInt()
  @Min(1)
  @Max(MAX_CAPACITY)
  maxSlotsPerCustomer?: number | null;
}

export class ListMatchesQueryDto extends PageQueryDto {
  @ApiPropertyOptional({ description: 'Only matches starting at or after this time', format: 'date-time' })
  @IsOptional()
  @IsZonedDateTime()
  from?: string;

  @ApiPropertyOptional({ description: 'Only matches starting before this time', format: 'date-time' })
  @IsOptional()
  @IsZonedDateTime()
  to?: string;
}

export class MatchResponse {
  @ApiProperty({ format: 'uuid' }) id!: string;
  @ApiProperty() title!: string;
  @ApiProperty({ format: 'date-time' }) startsAt!: string;
  @ApiProperty() capacity!: number;
  @ApiProperty() bookedSlots!: number;
  @ApiProperty({ description: 'Slots of live holds (active and unexpired)' }) heldSlots!: number;
  @ApiProperty({ description: 'Waitlist entries still waiting for an offer' }) waitingEntries!: number;
  @ApiProperty({ description: 'capacity - bookedSlots - heldSlots; 0 while waitlist entries wait (free slots are theirs)' }) availableSlots!: number;
  @ApiProperty({ type: Number, nullable: true, description: 'The most slots one customer may have in the match; null: no limit' }) maxSlotsPerCustomer!: number | null;
  @ApiProperty({ format: 'date-time' }) createdAt!: string;
  @ApiProperty({ format: 'date-time' }) updatedAt!: string;
}

export class MatchPageResponse {
  @ApiProperty({ type: [MatchResponse] }) items!: MatchResponse[];
  @ApiProperty({ type: String, nullable: true, description: 'Pass as cursor for the next page; null on the last page' })
  nextCursor!: string | null;
}
