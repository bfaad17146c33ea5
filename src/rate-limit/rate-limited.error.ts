import { Problem } from '../errors/problem';

/** Which limit a write ran into. */
export type RateLimitName = 'customer' | 'ip';

/** Too many writes in the current window: answered with Retry-After, the seconds until the window ends. */
@Problem('rate-limited', (e: RateLimitedError) => ({ limit: e.limit, retryAfterSeconds: e.retryAfterSeconds }))
export class RateLimitedError extends Error {
  override readonly name = 'RateLimitedError';

  constructor(
    readonly limit: RateLimitName,
    readonly maxWrites: number,
    readonly windowMs: number,
    readonly retryAfterSeconds: number,
  ) {
    super(
      `Too many writes from this ${limit === 'customer' ? 'customer' : 'IP address'}: at most ${maxWrites} per ${windowMs / 1000} s; retry in ${retryAfterSeconds} s`,
    );
  }
}
