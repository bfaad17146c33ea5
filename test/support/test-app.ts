import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test } from '@nestjs/testing';
import type { Server } from 'node:http';
import { NestLogger } from '../../src/observability/nest-logger';
import type { DestinationStream } from 'pino';
import { DataSource } from 'typeorm';
import { AppModule } from '../../src/app.module';
import { configureApp, createHttpAdapter } from '../../src/app.setup';
import { signAccessToken } from '../../src/auth/jwt';
import { type AppConfig, loadConfig } from '../../src/config/app-config';
import { QUIET_WEBHOOKS } from './quiet-webhooks';
import { GENEROUS_RATE_LIMITS } from './rate-limits';
import { createTestDatabase, dropTestDatabase } from './test-database';

export interface TestApp {
  app: NestFastifyApplication;
  server: Server;
  dataSource: DataSource;
  config: AppConfig;
  /** The test's database itself (also when the app connects through a pooler). */
  databaseUrl: string;
  /** A bearer token for this app's secret (HS256, AUTH_JWT_SECRET). */
  token(sub: string, options?: { admin?: boolean }): string;
  close(): Promise<void>;
}

/** The app's HS256 secret; an app configured with an identity provider alone has none. */
export function jwtSecretOf(config: AppConfig): string {
  if (config.auth.jwtSecret === undefined) throw new Error('This app accepts no HS256 token: it has an identity provider and no AUTH_JWT_SECRET');
  return config.auth.jwtSecret;
}

/**
 * The real application (same module, same HTTP setup as main.ts) on a fresh database of its
 * own. `env` overrides configuration the way an operator would, e.g. { DATABASE_POOL_MAX: '2' }
 * (including GENEROUS_RATE_LIMITS and QUIET_WEBHOOKS).
 */
export async function startTestApp(
  env: NodeJS.ProcessEnv = {},
  options: {
    logDestination?: DestinationStream;
    connectThrough?: (directUrl: string) => string;
    /** Another instance on this database (of a TestApp already running), which close() leaves in place. */
    sharedDatabaseUrl?: string;
  } = {},
): Promise<TestApp> {
  const databaseUrl = options.sharedDatabaseUrl ?? (await createTestDatabase());
  // Through a pooler when the test gives one (DATABASE_DIRECT_URL is then the database itself).
  const serviceUrl = options.connectThrough?.(databaseUrl) ?? databaseUrl;
  // Quiet unless TEST_LOGS is set or the test captures the logs itself.
  const logLevel = process.env.TEST_LOGS || options.logDestination ? 'debug' : 'fatal';
  const config = loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: logLevel,
    ...GENEROUS_RATE_LIMITS,
    ...QUIET_WEBHOOKS,
    ...env,
    DATABASE_URL: serviceUrl,
    ...(options.connectThrough ? { DATABASE_DIRECT_URL: databaseUrl } : {}),
  });
  const moduleRef = await Test.createTestingModule({
    imports: [AppModule.register({ config, databaseUrl: serviceUrl, logDestination: options.logDestination })],
  }).compile();
  const app = moduleRef.createNestApplication<NestFastifyApplication>(createHttpAdapter(config), { bodyParser: false, bufferLogs: true });
  app.useLogger(app.get(NestLogger));
  await configureApp(app, config);
  await app.listen(0, '127.0.0.1');
  return {
    app,
    server: app.getHttpServer(),
    dataSource: app.get(DataSource),
    config,
    databaseUrl,
    token: (sub, options = {}) => signAccessToken({ sub, admin: options.admin ?? false }, jwtSecretOf(config), 3600),
    close: async () => {
      await app.close();
      if (options.sharedDatabaseUrl === undefined) await dropTestDatabase(databaseUrl);
    },
  };
}
