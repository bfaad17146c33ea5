import { type ExecutionContext, Injectable } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import {
  InjectThrottlerOptions,
  InjectThrottlerStorage,
  normalizeIp,
  ThrottlerGuard,
  type ThrottlerModuleOptions,
  type ThrottlerOptions,
  type ThrottlerStorage,
} from '@nestjs/throttler';
import type { FastifyRequest } from 'fastify';
import type { Authenticator } from '../auth/authenticator';
import type { RateLimitConfig } from '../config/app-config';
import { Metrics } from '../observability/metrics';
import { type RateLimitName, RateLimitedError } from './rate-limited.error';

type ThrottlerRequest = Parameters<ThrottlerGuard['handleRequest']>[0];

const WRITE_METHODS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Any case: routing ignores it, so /API/V1/... reaches the same routes and must count the same. */
const LIMITED_PATH = /^\/api\/v1\//i;

/** Writes under /api/v1 are limited; reads, health checks, /metrics and /docs never are. */
export function isLimitedRequest(request: Pick<FastifyRequest, 'method' | 'url'>): boolean {
  return WRITE_METHODS.has(request.method) && LIMITED_PATH.test(request.url);
}

/** The customer tracker of a write without a verified caller: RateLimitGuard counts it against its IP address only. */
const NO_CUSTOMER = '';

/**
 * The throttlers for ThrottlerModule: per customer (authenticated writes) and per client IP
 * (every write), each a fixed window of RATE_LIMIT_WINDOW_MS; a limit of 0 is left out.
 *
 * The limiter runs before AuthGuard (so that unauthenticated floods are limited per IP too) and
 * counts a customer only once the token verifies: an unverified "sub" must never count against,
 * and so lock out, somebody else's customer id. The Authenticator verifies each request's token
 * once, for the limiter and AuthGuard alike.
 */
export function rateLimitOptions(config: RateLimitConfig, authenticator: Authenticator): ThrottlerModuleOptions {
  const throttlers: ThrottlerOptions[] = [];
  if (config.perCustomer > 0) {
    throttlers.push({
      name: 'customer' satisfies RateLimitName,
      limit: config.perCustomer,
      ttl: config.windowMs,
      getTracker: async (request) => (await authenticator.verifiedCallerOrNull(request as FastifyRequest))?.customerId ?? NO_CUSTOMER,
    });
  }
  if (config.perIp > 0) {
    throttlers.push({
      name: 'ip' satisfies RateLimitName,
      limit: config.perIp,
      ttl: config.windowMs,
      // The client address as TRUST_PROXY allows it to be known (app.setup.ts), not a header value the client chose.
      getTracker: (request) => normalizeIp((request as FastifyRequest).ip ?? 'unknown'),
    });
  }
  return {
    throttlers,
    // One counter per caller across every write route, not one per route.
    generateKey: (_context, tracker, name) => `${name}:${tracker}`,
    setHeaders: false,
  };
}

/**
 * @nestjs/throttler's guard, registered globally before AuthGuard. Over a limit it throws
 * RateLimitedError, which ProblemDetailsFilter answers with 429 problem+json and Retry-After.
 */
@Injectable()
export class RateLimitGuard extends ThrottlerGuard {
  constructor(
    @InjectThrottlerOptions() options: ThrottlerModuleOptions,
    @InjectThrottlerStorage() storage: ThrottlerStorage,
    reflector: Reflector,
    private readonly metrics: Metrics,
  ) {
    super(options, storage, reflector);
  }

  override async canActivate(context: ExecutionContext): Promise<boolean> {
    // With both limits at 0 there is nothing to count (and nothing to warn about).
    if (this.throttlers.length === 0) return true;
    return super.canActivate(context);
  }

  override async onModuleInit(): Promise<void> {
    const options = this.options;
    // The base class warns when no throttler is configured; both limits at 0 is a valid choice here.
    if (!Array.isArray(options) && options.throttlers.length === 0) {
      this.throttlers = [];
      return;
    }
    await super.onModuleInit();
  }

  /** Checked before any throttler (a throttler's own skipIf would replace a common one, not add to it). */
  protected override shouldSkip(context: ExecutionContext): Promise<boolean> {
    return Promise.resolve(!isLimitedRequest(context.switchToHttp().getRequest<FastifyRequest>()));
  }

  protected override async handleRequest({ context, limit, ttl, throttler, getTracker, generateKey }: ThrottlerRequest): Promise<boolean> {
    const request = context.switchToHttp().getRequest<FastifyRequest>();
    const name = (throttler.name ?? 'ip') as RateLimitName;
    const tracker = await getTracker(request, context);
    if (name === 'customer' && tracker === NO_CUSTOMER) return true;
    const key = generateKey(context, tracker, name);
    const { isBlocked, timeToBlockExpire } = await this.storageService.increment(key, ttl, limit, ttl, name);
    if (!isBlocked) return true;
    this.metrics.rateLimitedRequests.inc({ limit: name });
    throw new RateLimitedError(name, limit, ttl, Math.max(1, timeToBlockExpire));
  }
}
