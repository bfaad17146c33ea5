import { Body, Controller, Delete, Get, HttpCode, Param, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiNoContentResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { CurrentCaller } from '../auth/auth.decorators';
import type { Caller } from '../auth/caller';
import type { Page } from '../database/sql';
import { ApiProblems } from '../errors/api-problems.decorator';
import { uuidPipe } from '../errors/request-validation';
import { cursorPosition } from '../http/cursor';
import { DEFAULT_PAGE_SIZE } from '../http/page-query.dto';
import { type IdempotencyKeyed, IdempotencyKey } from '../idempotency/idempotent.decorator';
import { IdempotencyService } from '../idempotency/idempotency.service';
import { JoinWaitlistDto, ListWaitlistQueryDto, WaitlistEntryResponse, WaitlistPageResponse } from './dto/waitlist.dto';
import type { WaitlistEntry } from './waitlist-entry';
import { WaitlistService } from './waitlist.service';

@ApiTags('waitlist')
@ApiBearerAuth()
@ApiProblems(401)
@Controller()
export class WaitlistController {
  constructor(
    private readonly waitlist: WaitlistService,
    private readonly idempotency: IdempotencyService,
  ) {}

  @Post('matches/:id/waitlist')
  @ApiOperation({ summary: 'Join the waitlist of a sold-out match; freed slots are offered first come, first served, as holds' })
  @ApiCreatedResponse({ type: WaitlistEntryResponse })
  @ApiProblems(400, 404, 409, 413, 415, 422, 503)
  join(
    @CurrentCaller() caller: Caller,
    @Param('id', uuidPipe('id')) matchId: string,
    @Body() body: JoinWaitlistDto,
    @IdempotencyKey() key: IdempotencyKeyed | undefined,
  ): Promise<WaitlistEntry> {
    return this.idempotency.run(key, (write) => this.waitlist.join(caller, matchId, body.slots, write));
  }

  @Get('waitlist')
  @ApiOperation({ summary: "List the caller's waitlist entries, newest first (admins: everyone's)" })
  @ApiOkResponse({ type: WaitlistPageResponse })
  @ApiProblems(400)
  list(@CurrentCaller() caller: Caller, @Query() query: ListWaitlistQueryDto): Promise<Page<WaitlistEntry>> {
    return this.waitlist.list(caller, {
      ...(query.matchId !== undefined && { matchId: query.matchId }),
      ...(query.status !== undefined && { status: query.status }),
      before: cursorPosition(query.cursor),
      limit: query.limit ?? DEFAULT_PAGE_SIZE,
    });
  }

  @Get('waitlist/:id')
  @ApiOperation({ summary: 'Get one of the caller’s waitlist entries (admins: any entry)' })
  @ApiOkResponse({ type: WaitlistEntryResponse })
  @ApiProblems(400, 404)
  get(@CurrentCaller() caller: Caller, @Param('id', uuidPipe('id')) id: string): Promise<WaitlistEntry> {
    return this.waitlist.get(caller, id);
  }

  @Delete('waitlist/:id')
  @HttpCode(204)
  @ApiOperation({ summary: 'Leave the waitlist, or decline its offer (the slots go to the next in line); leaving again is a no-op' })
  @ApiNoContentResponse()
  @ApiProblems(400, 404, 503)
  leave(@CurrentCaller() caller: Caller, @Param('id', uuidPipe('id')) id: string): Promise<void> {
    return this.waitlist.leave(caller, id);
  }
}
