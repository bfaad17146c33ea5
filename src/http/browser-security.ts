import type { FastifyCorsOptions } from '@fastify/cors';
import type { onRequestHookHandler } from 'fastify';
import helmet from 'helmet';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { IDEMPOTENCY_KEY_HEADER, REPLAYED_HEADER } from '../idempotency/idempotent.decorator';

/**
 * helmet's security headers (Content-Security-Policy, Strict-Transport-Security,
 * X-Content-Type-Options, X-Frame-Options, Referrer-Policy, Cross-Origin-*-Policy, ...) on every
 * answer. helmet's default policy already lets the Swagger UI at /docs load its own scripts and
 * styles; only upgrade-insecure-requests is left out, because it would make a browser fetch
 * those assets over HTTPS from an instance served over plain HTTP (development, or behind a
 * proxy that terminates TLS on another port).
 */
export function securityHeaders(): onRequestHookHandler {
  const headers = headersSetBy(helmet({ contentSecurityPolicy: { useDefaults: true, directives: { upgradeInsecureRequests: null } } }));
  // Lower-case names, as Fastify keeps them. On the reply rather than the Node.js response, which
  // would copy each into a header table of its own: Fastify hands them to writeHead as one object.
  // One by one (reply.headers would list an object's keys again on every request).
  const lowerCased = headers.map(([name, value]) => [name.toLowerCase(), value] as const);
  return (_request, reply, done) => {
    for (const [name, value] of lowerCased) reply.header(name, value);
    done();
  };
}

type HelmetMiddleware = (request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void) => void;

/**
 * The headers a helmet middleware sets. They depend on its options alone (helmet reads nothing
 * of the request), so they are worked out once at startup and then set in one step, instead of
 * running helmet's dozen middlewares on every request.
 */
function headersSetBy(middleware: HelmetMiddleware): ReadonlyArray<readonly [string, string]> {
  const headers = new Map<string, string>();
  const response = {
    setHeader: (name: string, value: unknown) => headers.set(name, String(value)),
    removeHeader: (name: string) => headers.delete(name),
  };
  let finished = false;
  middleware({} as IncomingMessage, response as unknown as ServerResponse, (error?: unknown) => {
    if (error !== undefined) throw new Error('helmet refused its options', { cause: error });
    finished = true;
  });
  if (!finished) throw new Error('helmet did not set its headers synchronously');
  return [...headers];
}

/** Request headers a browser may send cross-origin, besides the CORS-safelisted ones. */
const ALLOWED_REQUEST_HEADERS = ['Authorization', 'Content-Type', IDEMPOTENCY_KEY_HEADER, 'X-Request-Id'];
/** Response headers the service sets that a cross-origin script may read, besides the CORS-safelisted ones. */
const EXPOSED_RESPONSE_HEADERS = ['Retry-After', 'X-Request-Id', REPLAYED_HEADER, 'WWW-Authenticate'];
const PREFLIGHT_CACHE_SECONDS = 600;

/**
 * CORS for the exact origins of CORS_ORIGINS. The origin is checked by a function rather than
 * handed over as a list: for an origin that is not allowed, @fastify/cors then adds no
 * CORS header at all, and a preflight from it is not answered (404 like any unknown route).
 * Tokens travel in the Authorization header, never in cookies, so credentials stay off.
 */
export function corsOptions(origins: readonly string[]): FastifyCorsOptions {
  const allowed = new Set(origins);
  return {
    origin: (origin, callback) => callback(null, origin !== undefined && allowed.has(origin)),
    // Joined here: @fastify/cors would join lists with ", ", the cors package of Express used ",".
    methods: 'GET,HEAD,POST,PUT,PATCH,DELETE',
    allowedHeaders: ALLOWED_REQUEST_HEADERS.join(','),
    exposedHeaders: EXPOSED_RESPONSE_HEADERS.join(','),
    credentials: false,
    maxAge: PREFLIGHT_CACHE_SECONDS,
  };
}
