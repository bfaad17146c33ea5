import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiProperty, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsOptional, IsString, MaxLength } from 'class-validator';
import { AdminOnly } from '../auth/auth.decorators';
import { ApiProblems } from '../errors/api-problems.decorator';
import { RequestValidationError } from '../errors/request-validation';
import { IsQueryInt } from '../http/validators';
import { EVENT_TYPES, type DomainEvent } from './event-types';
import { decodeFeedCursor, encodeFeedCursor, EventsRepository, FEED_START } from './events.repository';

const DEFAULT_FEED_PAGE = 100;

export class EventFeedQueryDto {
  @ApiPropertyOptional({ description: 'nextCursor of the previous page; absent: from the oldest event kept' })
  @IsOptional()
  @IsString()
  @MaxLength(100)
  after?: string;

  @ApiPropertyOptional({ minimum: 1, maximum: 1000, default: DEFAULT_FEED_PAGE })
  @IsOptional()
  @IsQueryInt(1, 1000)
  limit?: number;
}

export class EventResponse {
  @ApiProperty({ format: 'uuid', description: 'Unique; the webhook-id of its deliveries' }) id!: string;
  @ApiProperty({ enum: EVENT_TYPES }) type!: string;
  @ApiProperty({ format: 'date-time' }) occurredAt!: string;
  @ApiProperty({ type: 'object', additionalProperties: true, description: 'The resource after the change, as the API shows it' }) data!: Record<string, unknown>;
}

export class EventFeedResponse {
  @ApiProperty({ type: [EventResponse] }) items!: EventResponse[];
  @ApiProperty({ description: 'Pass as `after` for the next events; the same cursor when there are none yet' }) nextCursor!: string;
}

@ApiTags('admin')
@ApiBearerAuth()
@ApiProblems(401, 403)
@Controller('admin/events')
export class EventsController {
  constructor(private readonly events: EventsRepository) {}

  @Get()
  @AdminOnly()
  @ApiOperation({ summary: 'Events in feed order, after a cursor; an event that commits late never lands behind a cursor already handed out (admin)' })
  @ApiOkResponse({ type: EventFeedResponse })
  @ApiProblems(400)
  async feed(@Query() query: EventFeedQueryDto): Promise<{ items: DomainEvent[]; nextCursor: string }> {
    const after = query.after === undefined ? FEED_START : decodeFeedCursor(query.after);
    if (!after) throw new RequestValidationError([{ field: 'after', message: 'after is not a cursor this API returned' }]);
    const { events, last } = await this.events.feed(after, query.limit ?? DEFAULT_FEED_PAGE);
    return { items: events, nextCursor: encodeFeedCursor(last) };
  }
}
