import { Inject, Injectable, Logger } from '@nestjs/common';
import type { ThrottlerStorage } from '@nestjs/throttler';
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';
import { Metrics } from '../observability/metrics';
import { REDIS_CLIENT } from '../redis/redis.module';

type ThrottlerStorageRecord = Awaited<ReturnType<ThrottlerStorage['increment']>>;

const KEY_PREFIX = 'rate-limit:';

/**
 * One fixed window per key, atomically: the first hit creates the counter and starts its
 * window (PEXPIRE); later hits only count. A key that somehow lost its expiry gets one again,
 * so a counter can never block forever. Returns { hits, milliseconds left in the window }.
 */
const INCREMENT_SCRIPT = `
local hits = redis.call('INCR', KEYS[1])
if hits == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  ttl = tonumber(ARGV[1])
end
return { hits, ttl }`;
const INCREMENT_SHA = createHash('sha1').update(INCREMENT_SCRIPT).digest('hex');

/** After a failed Redis command, count in memory for this long before trying Redis again. */
export const REDIS_RETRY_AFTER_MS = 1_000;

interface Window {
  hits: number;
  resetAt: number;
}

/** Fixed-window counters in this process: the store without Redis, and the fallback while Redis fails. */
export class MemoryWindows {
  private readonly windows = new Map<string, Window>();
  private nextSweepAt = 0;

  increment(key: string, windowMs: number, now = Date.now()): { hits: number; ttlMs: number } {
    if (now >= this.nextSweepAt) this.sweep(now, windowMs);
    let window = this.windows.get(key);
    if (!window || window.resetAt <= now) {
      window = { hits: 0, resetAt: now + windowMs };
      this.windows.set(key, window);
    }
    window.hits += 1;
    return { hits: window.hits, ttlMs: window.resetAt - now };
  }

  get size(): number {
    return this.windows.size;
  }

  /** Drops finished windows, at most once per window length, so memory follows the active callers only. */
  private sweep(now: number, windowMs: number): void {
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
    this.nextSweepAt = now + windowMs;
  }
}

/**
 * The throttler's storage: counters in Redis (shared by every instance) when REDIS_URL is set,
 * in memory otherwise. A failing Redis never fails or delays a request for long: the hit is
 * counted in memory instead (limits then hold per instance), Redis is left alone for
 * REDIS_RETRY_AFTER_MS, and the outage is logged once when it starts and once when it ends.
 */
@Injectable()
export class RateLimitStorage implements ThrottlerStorage {
  private readonly logger = new Logger('RateLimit');
  private readonly memory = new MemoryWindows();
  private redisDown = false;
  private redisRetryAt = 0;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis | null,
    private readonly metrics: Metrics,
  ) {}

  /** ThrottlerStorage: `ttl` is the window in milliseconds; the times returned are in seconds. */
  async increment(key: string, ttl: number, limit: number, _blockDuration: number, _throttlerName: string): Promise<ThrottlerStorageRecord> {
    const { hits, ttlMs } = await this.count(KEY_PREFIX + key, ttl);
    const seconds = Math.max(1, Math.ceil(ttlMs / 1000));
    const isBlocked = hits > limit;
    return { totalHits: hits, timeToExpire: seconds, isBlocked, timeToBlockExpire: isBlocked ? seconds : 0 };
  }

  private async count(key: string, windowMs: number): Promise<{ hits: number; ttlMs: number }> {
    if (!this.redis || Date.now() < this.redisRetryAt) return this.countInMemory(key, windowMs);
    try {
      const counted = await this.countInRedis(this.redis, key, windowMs);
      if (this.redisDown) {
        this.redisDown = false;
        this.logger.log('Redis answers again: rate limits are counted in Redis again');
      }
      return counted;
    } catch (error) {
      this.redisRetryAt = Date.now() + REDIS_RETRY_AFTER_MS;
      if (!this.redisDown) {
        this.redisDown = true;
        this.logger.warn(
          `Redis failed (${error instanceof Error ? error.message : String(error)}): rate limits are counted in memory, per instance, until it answers again`,
        );
      }
      return this.countInMemory(key, windowMs);
    }
  }

  private countInMemory(key: string, windowMs: number): { hits: number; ttlMs: number } {
    if (this.redis) this.metrics.rateLimitFallbacks.inc();
    return this.memory.increment(key, windowMs);
  }

  private async countInRedis(redis: Redis, key: string, windowMs: number): Promise<{ hits: number; ttlMs: number }> {
    let reply: unknown;
    try {
      reply = await redis.evalsha(INCREMENT_SHA, 1, key, windowMs);
    } catch (error) {
      if (!(error instanceof Error && error.message.startsWith('NOSCRIPT'))) throw error;
      // First use on this Redis (or after a restart / SCRIPT FLUSH): send the script itself.
      reply = await redis.eval(INCREMENT_SCRIPT, 1, key, windowMs);
    }
    if (!Array.isArray(reply) || typeof reply[0] !== 'number' || typeof reply[1] !== 'number') {
      throw new Error(`unexpected reply from the rate-limit script: ${JSON.stringify(reply)}`);
    }
    return { hits: reply[0], ttlMs: reply[1] };
  }
}
