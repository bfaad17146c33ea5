import type { INestApplication } from '@nestjs/common';
import type { NestExpressApplication } from '@nestjs/platform-express';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { AppConfig } from './config/app-config';
import { documentRateLimitedWrites } from './errors/api-problems.decorator';
import { createValidationPipe } from './errors/request-validation';
import { jsonBodyParsing, routeNotFound } from './http/body-parsing';
import { corsOptions, securityHeaders } from './http/browser-security';
import { GracefulShutdown } from './lifecycle/graceful-shutdown';
import { httpMetrics } from './observability/http-metrics';
import { requestLogging, ROOT_LOGGER } from './observability/logging';
import { Metrics } from './observability/metrics';
import type { Logger as PinoLogger } from 'pino';

export const API_PREFIX = 'api/v1';

/**
 * Everything about the HTTP surface that is not a route; shared by main.ts and the e2e tests.
 * Initialises the application, because the final not-found handler must come after the routes.
 */
export async function configureApp(app: NestExpressApplication, config: AppConfig): Promise<void> {
  app.disable('x-powered-by');
  // request.ip, the client address of the rate limits and the access log: the socket's peer, or
  // the right-most X-Forwarded-For entry that no trusted proxy sent (TRUST_PROXY).
  app.set('trust proxy', config.http.trustProxy);
  app.use(securityHeaders());
  app.use(requestLogging(app.get<PinoLogger>(ROOT_LOGGER)));
  app.use(httpMetrics(app.get(Metrics)));
  app.use(app.get(GracefulShutdown).trackRequests);
  // Off unless CORS_ORIGINS names origins: browsers of other origins then get no CORS header at all.
  if (config.http.corsOrigins.length > 0) app.enableCors(corsOptions(config.http.corsOrigins));
  for (const handler of jsonBodyParsing(config.http.bodyLimitBytes)) app.use(handler);
  app.setGlobalPrefix(API_PREFIX, { exclude: ['health/live', 'health/ready', 'metrics'] });
  app.useGlobalPipes(createValidationPipe());
  setUpApiDocs(app);
  await app.init();
  app.use(routeNotFound);
}

function setUpApiDocs(app: INestApplication): void {
  const document = documentRateLimitedWrites(SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setTitle('Match booking API')
      .setDescription(
        'Book slots in matches without overbooking. Errors are RFC 9457 problem+json. ' +
          'Authenticate with "Authorization: Bearer <JWT>": a token of the configured identity provider, or HS256 with the shared secret ' +
          '(the customer id in AUTH_CUSTOMER_CLAIM, default sub; the admin role in AUTH_ROLES_CLAIM, default roles).',
      )
      .setVersion('1')
      .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT' })
      .build(),
  ), `/${API_PREFIX}/`);
  SwaggerModule.setup('docs', app, document, { jsonDocumentUrl: 'docs-json' });
}
