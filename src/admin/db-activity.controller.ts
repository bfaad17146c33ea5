import { Controller, Get, Query } from '@nestjs/common';
import { ApiBearerAuth, ApiOkResponse, ApiOperation, ApiPropertyOptional, ApiTags } from '@nestjs/swagger';
import { IsOptional } from 'class-validator';
import { AdminOnly } from '../auth/auth.decorators';
import { ApiProblems } from '../errors/api-problems.decorator';
import { IsQueryInt } from '../http/validators';
import { type DatabaseActivity, DbActivityRepository } from './db-activity.repository';

export class DbActivityQueryDto {
  @ApiPropertyOptional({ description: 'Report transactions open longer than this (ms)', default: 1000, minimum: 0 })
  @IsOptional()
  @IsQueryInt(0, 86_400_000)
  longerThanMs?: number;
}

@ApiTags('admin')
@ApiBearerAuth()
@Controller('admin/db')
export class DbActivityController {
  constructor(private readonly activity: DbActivityRepository) {}

  @Get('activity')
  @AdminOnly()
  @ApiOperation({
    summary: 'Long transactions, sessions idle in transaction, and who blocks whom (pg_stat_activity, pg_blocking_pids), with durations (admin)',
  })
  @ApiOkResponse({ description: 'A snapshot of database activity for this service’s database' })
  @ApiProblems(400, 401, 403)
  snapshot(@Query() query: DbActivityQueryDto): Promise<DatabaseActivity> {
    return this.activity.snapshot(query.longerThanMs ?? 1000);
  }
}
