import { Controller, Get, Inject } from '@nestjs/common';
import { ApiOperation, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { Public } from '../auth/auth.decorators';
import { IDENTITY_PROVIDER } from '../auth/authenticator';
import type { IdentityProvider } from '../auth/identity-provider';
import { clusterWorker, type WorkerClusterState } from '../lifecycle/cluster-worker';
import { ShutdownState } from '../lifecycle/shutdown-state';
import { REDIS_CLIENT } from '../redis/redis.module';
import { DatabasePing } from './database-ping';

@ApiTags('health')
@Public()
@Controller('health')
export class HealthController {
  private readonly timeoutMs: number;

  constructor(
    private readonly health: HealthCheckService,
    private readonly indicators: HealthIndicatorService,
    private readonly shutdown: ShutdownState,
    private readonly database: DatabasePing,
    @Inject(REDIS_CLIENT) private readonly redis: Redis | null,
    @Inject(IDENTITY_PROVIDER) private readonly identityProvider: IdentityProvider | null,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'health'>,
  ) {
    this.timeoutMs = config.health.checkTimeoutMs;
  }

  @Get('live')
  @HealthCheck()
  @ApiOperation({ summary: 'Liveness: the process runs and its event loop answers; touches no dependency' })
  live() {
    return this.health.check([]);
  }

  @Get('ready')
  @HealthCheck()
  @ApiOperation({
    summary:
      "Readiness: 503 while shutting down, when PostgreSQL does not answer, or before the identity provider's keys were ever fetched; Redis down, or the identity provider unreachable while its keys are cached, only degrades (still 200)",
  })
  ready() {
    const cluster = clusterWorker;
    return this.health.check([
      () => {
        const session = this.indicators.check('lifecycle');
        return this.shutdown.isShuttingDown ? session.down({ message: 'shutting down' }) : session.up();
      },
      // Cluster mode only: which worker answered, and how many of the instance's workers serve.
      // Fewer than wanted only degrades: the others serve, and the primary is replacing the missing ones.
      ...(cluster ? [() => this.clusterCheck(cluster.state())] : []),
      () =>
        this.indicators
          .check('database')
          .attempt(() => this.database.ping())
          .withTimeout(this.timeoutMs),
      // Bookings do not need Redis: a Redis outage must not take every instance out of the load balancer.
      async () => {
        const session = this.indicators.check('redis');
        if (!this.redis) return session.up({ mode: 'not configured (single instance)' });
        try {
          await this.redis.ping();
          return session.up();
        } catch (error) {
          return session.degraded({ message: error instanceof Error ? error.message : String(error) });
        }
      },
      // Cached keys keep verifying tokens through a provider outage; without any, no token of the provider can be verified.
      () => {
        const session = this.indicators.check('identityProvider');
        if (!this.identityProvider) return session.up({ mode: 'not configured (HS256 tokens only)' });
        const keys = this.identityProvider.keysState();
        switch (keys.state) {
          case 'current':
            return session.up({ keys: keys.keys, fetchedAt: keys.fetchedAt });
          case 'stale':
            return session.degraded({ message: `serving cached keys; the last fetch failed: ${keys.lastError}`, keys: keys.keys, fetchedAt: keys.fetchedAt });
          case 'missing':
            return session.down({ message: `no signing key fetched yet${keys.lastError === undefined ? '' : `; the last fetch failed: ${keys.lastError}`}` });
        }
      },
    ]);
  }

  private clusterCheck(state: WorkerClusterState) {
    const session = this.indicators.check('cluster');
    if (state.workersListening < state.workersWanted) {
      return session.degraded({ message: `${state.workersListening} of ${state.workersWanted} workers listening`, ...state });
    }
    return session.up({ ...state });
  }
}
