import { Body, Controller, Get, HttpCode, Param, Patch, Post, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiCreatedResponse, ApiOkResponse, ApiOperation, ApiTags } from '@nestjs/swagger';
import { AdminOnly } from '../auth/auth.decorators';
import { ApiProblems } from '../errors/api-problems.decorator';
import { RequestValidationError, uuidPipe } from '../errors/request-validation';
import type { Page } from '../database/sql';
import { cursorPosition } from '../http/cursor';
import { DEFAULT_PAGE_SIZE } from '../http/page-query.dto';
import type { MatchView } from './match';
import { CreateMatchDto, ListMatchesQueryDto, MatchPageResponse, MatchResponse, UpdateMatchDto } from './dto/match.dto';
import { MatchesService } from './matches.service';

@ApiTags('matches')
@ApiBearerAuth()
@ApiProblems(401)
@Controller('matches')
export class MatchesController {
  constructor(private readonly matches: MatchesService) {}

  @Post()
  @AdminOnly()
  @ApiOperation({ summary: 'Create a match (admin)' })
  @ApiCreatedResponse({ type: MatchResponse })
  @ApiProblems(400, 403, 413, 415)
  create(@Body() body: CreateMatchDto): Promise<MatchView> {
    return this.matches.create({ title: body.title, startsAt: new Date(body.startsAt), capacity: body.capacity, maxSlotsPerCustomer: body.maxSlotsPerCustomer ?? null });
  }

  @Get()
  @ApiOperation({ summary: 'List matches by start time, optionally within [from, to)' })
  @ApiOkResponse({ type: MatchPageResponse })
  @ApiProblems(400)
  list(@Query() query: ListMatchesQueryDto): Promise<Page<MatchView>> {
    const from = query.from === undefined ? undefined : new Date(query.from);
    const to = query.to === undefined ? undefined : new Date(query.to);
    if (from && to && from >= to) {
      throw new RequestValidationError([{ field: 'to', message: 'to must be later than from' }]);
    }
    return this.matches.list({ from, to, after: cursorPosition(query.cursor), limit: query.limit ?? DEFAULT_PAGE_SIZE });
  }

  @Get(':id')
  @ApiOperation({ summary: 'Get a match with its availability' })
  @ApiOkResponse({ type: MatchResponse })
  @ApiProblems(400, 404)
  get(@Param('id', uuidPipe('id')) id: string): Promise<MatchView> {
    return this.matches.get(id);
  }

  @Patch(':id')
  @HttpCode(200)
  @AdminOnly()
  @ApiOperation({ summary: 'Change title, start time, capacity or the per-customer limit (admin)' })
  @ApiOkResponse({ type: MatchResponse })
  @ApiProblems(400, 403, 404, 409, 413, 415, 503)
  update(@Param('id', uuidPipe('id')) id: string, @Body() body: UpdateMatchDto): Promise<MatchView> {
    if (body.title === undefined && body.startsAt === undefined && body.capacity === undefined && body.maxSlotsPerCustomer === undefined) {
      throw new RequestValidationError([{ field: 'body', message: 'send at least one of title, startsAt, capacity, maxSlotsPerCustomer' }]);
    }
    return this.matches.update(id, {
      ...(body.title !== undefined && { title: body.title }),
      ...(body.startsAt !== undefined && { startsAt: new Date(body.startsAt) }),
      ...(body.capacity !== undefined && { capacity: body.capacity }),
      ...(body.maxSlotsPerCustomer !== undefined && { maxSlotsPerCustomer: body.maxSlotsPerCustomer }),
    });
  }
}
