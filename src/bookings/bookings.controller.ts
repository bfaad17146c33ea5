import { Body, Controller, Get, HttpCode, Param, Post, Query, Req, Res } from '@nestjs/common';
import type { Request, Response } from 'express';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentCaller } from '../auth/auth.decorators';
import type { Page } from '../database/sql';
import { ApiProblems } from '../errors/api-problems.decorator';
import { uuidPipe } from '../errors/request-validation';
import { cursorPosition } from '../http/cursor';
import { DEFAULT_PAGE_SIZE } from '../http/page-query.dto';
import { ApiIdempotencyKey } from '../idempotency/api-idempotency-key.decorator';
import { idempotentRequest, respond } from '../idempotency/idempotent-request';
import { IdempotencyService } from '../idempotency/idempotency.service';
import type { Booking, Caller } from './booking';
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
  @ApiIdempotencyKey()
  async book(
    @CurrentCaller() caller: Caller,
    @Param('id', uuidPipe('id')) matchId: string,
    @Body() body: CreateBookingDto,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<unknown> {
    const idempotent = idempotentRequest(request, caller, 'POST /api/v1/matches/:id/bookings', 201);
    return respond(response, await this.idempotency.execute(idempotent, (guard) => this.bookings.book(caller, matchId, body.slots, guard?.claim)));
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
  @ApiIdempotencyKey()
  async reschedule(
    @CurrentCaller() caller: Caller,
    @Param('id', uuidPipe('id')) id: string,
    @Body() body: RescheduleBookingDto,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<unknown> {
    const idempotent = idempotentRequest(request, caller, 'POST /api/v1/bookings/:id/reschedule', 200);
    return respond(response, await this.idempotency.execute(idempotent, (hooks) => this.bookings.reschedule(caller, id, body.toMatchId, hooks)));
  }

  @Post('bookings/:id/cancel')
  @HttpCode(200)
  @ApiOperation({ summary: 'Cancel a booking and give its slots back; cancelling again answers the same' })
  @ApiOkResponse({ type: BookingResponse })
  @ApiProblems(400, 404, 409, 422, 503)
  @ApiIdempotencyKey()
  async cancel(
    @CurrentCaller() caller: Caller,
    @Param('id', uuidPipe('id')) id: string,
    @Req() request: Request,
    @Res({ passthrough: true }) response: Response,
  ): Promise<unknown> {
    const idempotent = idempotentRequest(request, caller, 'POST /api/v1/bookings/:id/cancel', 200);
    return respond(response, await this.idempotency.execute(idempotent, (hooks) => this.bookings.cancel(caller, id, hooks)));
  }
}
