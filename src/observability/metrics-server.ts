import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { createServer, type Server } from 'node:http';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { Metrics, PROMETHEUS_CONTENT_TYPE } from './metrics';
import { sameSecret } from './metrics.controller';

/** With METRICS_PORT set, serves GET /metrics on that port only (e.g. reachable from the cluster, not the internet). */
@Injectable()
export class MetricsServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(MetricsServer.name);
  private server: Server | undefined;

  constructor(
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) private readonly config: Pick<AppConfig, 'metrics' | 'http'>,
  ) {}

  async onApplicationBootstrap(): Promise<void> {
    const { port, token } = this.config.metrics;
    if (port === undefined) return;
    const expected = token === undefined ? undefined : Buffer.from(`Bearer ${token}`);
    const server = createServer((request, response) => {
      if (request.method !== 'GET' || request.url?.split('?')[0] !== '/metrics') {
        response.writeHead(404).end();
        return;
      }
      if (expected && !sameSecret(expected, request.headers.authorization)) {
        response.writeHead(401, { 'WWW-Authenticate': 'Bearer' }).end();
        return;
      }
      this.metrics.exposition().then(
        (body) => response.writeHead(200, { 'Content-Type': PROMETHEUS_CONTENT_TYPE }).end(body),
        (error: unknown) => {
          this.logger.error(`Collecting metrics failed: ${error instanceof Error ? error.message : String(error)}`);
          response.writeHead(500).end();
        },
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, this.config.http.host, resolve);
    });
    this.server = server;
    this.logger.log(`Metrics on http://${this.config.http.host}:${port}/metrics`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
