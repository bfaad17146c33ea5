import { Body, Controller, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentCaller } from '../auth/auth.decorators';
import type { Caller } from '../auth/caller';
import type { Page } from '../database/sql';
import { ApiProblems } from '../errors/api-problems.decorator';
import { uuidPipe } from '../errors/request-validation';
import { cursorPosition } from '../http/cursor';
import { DEFAULT_PAGE_SIZE } from '../http/page-query.dto';
import { type IdempotencyKeyed, IdempotencyKey } from '../idempotency/idempotent.decorator';
import { IdempotencyService } from '../idempotency/idempotency.service';
import type { Booking } from './booking';
import { BookingPageResponse, BookingResponse, CreateBookingDto, ListBookingsQueryDto, RescheduleBookingDto } from './dto/booking.dto';
import { BookingsService } from './bookings.service';

@ApiTags('bookings')
@ApiBearerAuth()
@ApiProblems(401)
@Controller()
export class BookingsController {
  constructor(
    private readonly bookings: BookingsService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post('matches/:id/bookings')
  @ApiOperation({ summary: 'Book slots of a match for the caller' })
  @ApiCreatedResponse({ type: BookingResponse })
  @ApiProblems(400, 404, 409, 413, 415, 422, 503)
  book(
    @CurrentCaller() caller: Caller,
    @Param('id', uuidPipe('id')) matchId: string,
    @Body() body: CreateBookingDto,
    @IdempotencyKey() key: IdempotencyKeyed | undefined,
  ): Promise<Booking> {
    return this.idempotency.run(key, (write) => this.bookings.book(caller, matchId, body.slots, write));
  }

  @Get('bookings')
  @ApiOperation({ summary: "List the caller's bookings, newest first (admins: everyone's)" })
  @ApiOkResponse({ type: BookingPageResponse })
  @ApiProblems(400)
  list(@CurrentCaller() caller: Caller, @Query() query: ListBookingsQueryDto): Promise<Page<Booking>> {
    return this.bookings.list(caller, {
      ...(query.matchId !== undefined && { matchId: query.matchId }),
      ...(query.status !== undefined && { status: query.status }),
      before: cursorPosition(query.cursor),
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
    });
  }

  @Get('bookings/:id')
  @ApiOperation({ summary: 'Get one of the caller’s bookings (admins: any booking)' })
  @ApiOkResponse({ type: BookingResponse })
  @ApiProblems(400, 404)
  get(@CurrentCaller() caller: Caller, @Param('id', uuidPipe('id')) id: string): Promise<Booking> {
    return this.bookings.get(caller, id);
  }

  @Post('bookings/:id/reschedule')
  @HttpCode(200)
  @ApiOperation({ summary: 'Move a booking to another match atomically (both match rows locked in id order)' })
  @ApiOkResponse({ type: BookingResponse })
  @ApiProblems(400, 404, 409, 413, 415, 422, 503)
  reschedule(
    @CurrentCaller() caller: Caller,
    @Param('id', uuidPipe('id')) id: string,
    @Body() body: RescheduleBookingDto,
    @IdempotencyKey() key: IdempotencyKeyed | undefined,
  ): Promise<Booking> {
    return this.idempotency.run(key, (write) => this.bookings.reschedule(caller, id, body.toMatchId, write));
  }

  @Post('bookings/:id/cancel')
  @HttpCode(200)
  @ApiOperation({ summary: 'Cancel a booking and give its slots back; cancelling again answers the same' })
  @ApiOkResponse({ type: BookingResponse })
  @ApiProblems(400, 404, 409, 422, 503)
  cancel(
    @CurrentCaller() caller: Caller,
    @Param('id', uuidPipe('id')) id: string,
    @IdempotencyKey() key: IdempotencyKeyed | undefined,
  ): Promise<Booking> {
    return this.idempotency.run(key, (write) => this.bookings.cancel(caller, id, write));
  }
}
