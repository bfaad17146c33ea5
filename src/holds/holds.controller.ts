import { Body, Controller, Delete, Get, HttpCode, Param, Post } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentCaller } from '../auth/auth.decorators';
import type { Caller } from '../auth/caller';
import type { Booking } from '../bookings/booking';
import { BookingResponse } from '../bookings/dto/booking.dto';
import { ApiProblems } from '../errors/api-problems.decorator';
import { uuidPipe } from '../errors/request-validation';
import { type IdempotencyKeyed, IdempotencyKey } from '../idempotency/idempotent.decorator';
import { IdempotencyService } from '../idempotency/idempotency.service';
import { CreateHoldDto, HoldResponse } from './dto/hold.dto';
import type { Hold } from './hold';
import { HoldsService } from './holds.service';

@ApiTags('holds')
@ApiBearerAuth()
@ApiProblems(401)
@Controller()
export class HoldsController {
  constructor(
    private readonly holds: HoldsService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post('matches/:id/holds')
  @ApiOperation({ summary: 'Hold slots of a match for HOLD_TTL_MS (default 10 minutes); they count against availability' })
  @ApiCreatedResponse({ type: HoldResponse })
  @ApiProblems(400, 404, 409, 413, 415, 422, 503)
  create(
    @CurrentCaller() caller: Caller,
    @Param('id', uuidPipe('id')) matchId: string,
    @Body() body: CreateHoldDto,
    @IdempotencyKey() key: IdempotencyKeyed | undefined,
  ): Promise<Hold> {
    return this.idempotency.run(key, (write) => this.holds.create(caller, matchId, body.slots, write));
  }

  @Get('holds/:id')
  @ApiOperation({ summary: 'Get one of the caller’s holds (admins: any hold)' })
  @ApiOkResponse({ type: HoldResponse })
  @ApiProblems(400, 404)
  get(@CurrentCaller() caller: Caller, @Param('id', uuidPipe('id')) id: string): Promise<Hold> {
    return this.holds.get(caller, id);
  }

  @Post('holds/:id/confirm')
  @ApiOperation({ summary: 'Turn the hold into a confirmed booking; 410 once it has expired' })
  @ApiCreatedResponse({ type: BookingResponse })
  @ApiProblems(400, 404, 409, 410, 422, 503)
  confirm(
    @CurrentCaller() caller: Caller,
    @Param('id', uuidPipe('id')) id: string,
    @IdempotencyKey() key: IdempotencyKeyed | undefined,
  ): Promise<Booking> {
    return this.idempotency.run(key, (write) => this.holds.confirm(caller, id, write));
  }

  @Delete('holds/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Release the hold at once; releasing it again is a no-op' })
  @ApiNoContentResponse()
  @ApiProblems(400, 404, 409, 503)
  release(@CurrentCaller() caller: Caller, @Param('id', uuidPipe('id')) id: string): Promise<void> {
    return this.holds.release(caller, id);
  }
}
