import { Controller, Get, Header, Headers, Inject, UnauthorizedException } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { timingSafeEqual } from 'node:crypto';
import { Public } from '../auth/auth.decorators';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { Metrics, PROMETHEUS_CONTENT_TYPE } from './metrics';

/** GET /metrics on the API port (when METRICS_PORT is not set), optionally behind METRICS_TOKEN. */
@ApiExcludeController()
@Public()
@Controller('metrics')
export class MetricsController {
  private readonly token: Buffer | undefined;

  constructor(
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'metrics'>,
  ) {
    this.token = config.metrics.token === undefined ? undefined : Buffer.from(`Bearer ${config.metrics.token}`);
  }

  @Get()
  @Header('Cache-Control', 'no-store')
  @Header('Content-Type', PROMETHEUS_CONTENT_TYPE)
  async scrape(@Headers('authorization') authorization: string | undefined): Promise<string> {
    if (this.token && !sameSecret(this.token, authorization)) {
      throw new UnauthorizedException('Send "Authorization: Bearer <METRICS_TOKEN>"');
    }
    return this.metrics.exposition();
  }
}

export function sameSecret(expected: Buffer, given: string | undefined): boolean {
  const candidate = Buffer.from(given ?? '');
  return candidate.length === expected.length && timingSafeEqual(candidate, expected);
}
