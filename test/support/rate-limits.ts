/**
 * The suite sends hundreds of writes a second from one IP and a few customers (races, bad-input
 * tables, rolling deploys): test apps and service processes get limits far above that by
 * default, still switched on so that every write goes through the limiter. A test overrides
 * them through its env; test/integration/rate-limits.spec.ts passes small ones.
 */
export const GENEROUS_RATE_LIMITS = { RATE_LIMIT_PER_CUSTOMER: '1000000', RATE_LIMIT_PER_IP: '1000000' } as const;
