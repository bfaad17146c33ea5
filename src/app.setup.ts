import fastifyCors from '@fastify/cors';
import type { INestApplication } from '@nestjs/common';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import type { AppConfig } from './config/app-config';
import type { TrustProxy } from './config/trust-proxy';
import { documentRateLimitedWrites } from './errors/api-problems.decorator';
import { createValidationPipe } from './errors/request-validation';
import { answerNotFoundOutside, useJsonBodyParsing } from './http/body-parsing';
import { useConditionalGet } from './http/conditional-get';
import { corsOptions, securityHeaders } from './http/browser-security';
import { GracefulShutdown } from './lifecycle/graceful-shutdown';
import { httpMetrics } from './observability/http-metrics';
import { requestIdOf, requestLogging, ROOT_LOGGER } from './observability/logging';
import { Metrics } from './observability/metrics';
import { httpRouteHook } from './observability/tracing';
import type { Logger as PinoLogger } from 'pino';

export const API_PREFIX = 'api/v1';

/** Paths outside the API prefix that are routes of the application (setGlobalPrefix's exclude). */
const UNPREFIXED_ROUTES = ['health/live', 'health/ready', 'metrics'];

/**
 * The Fastify server of the application; shared by main.ts and the tests. Routing as Express
 * did it: case-insensitive, a trailing slash ignored, path parameters of any length.
 */
export function createHttpAdapter(config: AppConfig): FastifyAdapter {
  return new FastifyAdapter({
    // request.ip, the client address of the rate limits and the access log: the socket's peer, or
    // the right-most X-Forwarded-For entry that no trusted proxy sent (TRUST_PROXY).
    trustProxy: trustProxyOption(config.http.trustProxy),
    genReqId: requestIdOf,
    // Node's defaults, which Fastify changes (72 s, and no limit): an idle keep-alive connection
    // closes after 5 s (README, "Rolling deploys"), a request that takes 5 min to arrive fails.
    keepAliveTimeout: 5_000,
    requestTimeout: 300_000,
    // Larger than any URL Node.js accepts: Express had no limit, and an over-long id is a 400 of the validation.
    routerOptions: { caseSensitive: false, ignoreTrailingSlash: true, maxParamLength: 65_536 },
  });
}

/** Fastify's types leave out a hop count (proxy-addr takes it): the same rule as a function. */
function trustProxyOption(trustProxy: TrustProxy): boolean | string[] | ((address: string, hop: number) => boolean) {
  if (typeof trustProxy !== 'number') return trustProxy;
  return (_address, hop) => hop < trustProxy;
}

/**
 * Everything about the HTTP surface that is not a route; shared by main.ts and the e2e tests.
 * Initialises the application, because routes of plugins (CORS, API docs) load with it.
 */
export async function configureApp(app: NestFastifyApplication, config: AppConfig): Promise<void> {
  const fastify = app.getHttpAdapter().getInstance();
  // In this order, for every request, unknown routes included (the request hooks Nest's adapter adds come first).
  fastify.addHook('onRequest', securityHeaders());
  fastify.addHook('onRequest', requestLogging(app.get<PinoLogger>(ROOT_LOGGER)));
  fastify.addHook('onRequest', httpMetrics(app.get(Metrics), unmatchedRouteLabel));
  fastify.addHook('onRequest', app.get(GracefulShutdown).trackRequests);
  const traceRoute = httpRouteHook();
  if (traceRoute) fastify.addHook('onRequest', traceRoute);
  // Off unless CORS_ORIGINS names origins: browsers of other origins then get no CORS header at all.
  // Registered here rather than with app.enableCors(), whose hook runs before the hooks above.
  if (config.http.corsOrigins.length > 0) await fastify.register(fastifyCors, corsOptions(config.http.corsOrigins));
  useJsonBodyParsing(fastify, config.http.bodyLimitBytes);
  useConditionalGet(fastify);
  answerNotFoundOutside(fastify, answeredByNest);
  app.setGlobalPrefix(API_PREFIX, { exclude: UNPREFIXED_ROUTES });
  app.useGlobalPipes(createValidationPipe());
  setUpApiDocs(app);
  await app.init();
}

/**
 * The not-found route Nest answers a request no route takes with: its path is under the API
 * prefix, or the path of an unprefixed route (for another method). Named as Express named the
 * routes it mounted for them, in lower case whatever the client's case, so that the
 * http_request_duration_seconds labels of such requests are a fixed few.
 */
function nestNotFoundRoute(path: string): string | undefined {
  // Routing ignores case and a trailing slash, and so did Express's not-found routes.
  const normalized = path.toLowerCase().replace(/(.)\/$/, '$1');
  if (normalized === `/${API_PREFIX}` || normalized.startsWith(`/${API_PREFIX}/`)) return `/${API_PREFIX}*path`;
  const route = UNPREFIXED_ROUTES.find((unprefixed) => normalized === `/${unprefixed}`);
  return route === undefined ? undefined : `/${route}`;
}

function answeredByNest(path: string): boolean {
  return nestNotFoundRoute(path) !== undefined;
}

function unmatchedRouteLabel(path: string): string {
  return nestNotFoundRoute(path) ?? 'unmatched';
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
