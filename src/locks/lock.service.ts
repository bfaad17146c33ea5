import { Inject, Injectable, Logger } from '@nestjs/common';
import { randomBytes } from 'node:crypto';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { Metrics } from '../observability/metrics';
import { REDIS_CLIENT } from '../redis/redis.module';

/** What an acquisition returns: everything needed to extend or release it, and nothing kept on the service. */
export interface LockHandle {
  readonly key: string;
  /** Random per acquisition: only the holder of this value can extend or release the lock. */
  readonly token: string;
  /** Increases at every acquisition of the key; write it next to guarded data to refuse stale holders. */
  readonly fencingToken: number;
  readonly ttlMs: number;
  /** When the lock expires by itself unless extended (local clock, epoch ms). */
  expiresAt: number;
}

export interface AcquireOptions {
  ttlMs: number;
  /** Attempts after the first; 0 = try once. */
  retries?: number;
  retryBaseDelayMs?: number;
  retryMaxDelayMs?: number;
}

export class LockUnavailableError extends Error {
  override readonly name = 'LockUnavailableError';
}

const KEY_PREFIX = 'lock:';
const FENCE_PREFIX = 'lock-fence:';

/**
 * SET NX PX and the fencing counter in one atomic step. The script refuses to run once the
 * caller's deadline has passed (Redis server time), so a request that reaches a paused or slow
 * Redis after its caller gave up cannot take a lock that nobody owns. Returns the fencing
 * token, 0 when the lock is held by someone else, -1 when the request came too late.
 */
const ACQUIRE_SCRIPT = `
local now = redis.call('TIME')
local nowMs = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
if nowMs > tonumber(ARGV[3]) then return -1 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('INCR', KEYS[2])
end
return 0`;

/** Deletes the key only if it still holds our token. */
const RELEASE_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/** Extends the key's TTL only if it still holds our token. */
const EXTEND_SCRIPT = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/**
 * A Redis lock that only its owner can release. It is for efficiency (keeping instances from
 * doing the same work twice); correctness always comes from PostgreSQL (row locks, constraints),
 * so a holder whose lock expired cannot corrupt data.
 */
@Injectable()
export class LockService {
  private readonly logger = new Logger(LockService.name);
  private readonly requestBudgetMs: number;

  constructor(
    @Inject(REDIS_CLIENT) private readonly redis: Redis | null,
    private readonly metrics: Metrics,
    @Inject(APP_CONFIG) config: { redis: Pick<AppConfig['redis'], 'commandTimeoutMs' | 'lockClockToleranceMs'> },
  ) {
    // How late (Redis clock) an acquire request may still take the lock: the command timeout,
    // plus a tolerance for clock differences between this host and Redis.
    this.requestBudgetMs = config.redis.commandTimeoutMs + config.redis.lockClockToleranceMs;
  }

  get available(): boolean {
    return this.redis !== null && this.redis.status === 'ready';
  }

  /**
   * Tries to take the lock, retrying with exponential backoff and full jitter; never sleeps
   * after the last attempt. Returns null when someone else holds it after every attempt.
   * Throws LockUnavailableError when Redis cannot be asked.
   */
  async acquire(name: string, options: AcquireOptions): Promise<LockHandle | null> {
    const redis = this.client();
    const { ttlMs, retries = 0, retryBaseDelayMs = 50, retryMaxDelayMs = 1_000 } = options;
    for (let attempt = 0; ; attempt += 1) {
      const token = randomBytes(16).toString('hex');
      let result: number;
      try {
        result = Number(await redis.eval(ACQUIRE_SCRIPT, 2, KEY_PREFIX + name, FENCE_PREFIX + name, token, ttlMs, Date.now() + this.requestBudgetMs));
      } catch (error) {
        this.metrics.lockAcquisitions.inc({ outcome: 'error' });
        throw new LockUnavailableError(`Could not ask Redis for lock "${name}": ${describe(error)}`, { cause: error });
      }
      if (result > 0) {
        this.metrics.lockAcquisitions.inc({ outcome: 'acquired' });
        return { key: name, token, fencingToken: result, ttlMs, expiresAt: Date.now() + ttlMs };
      }
      this.metrics.lockAcquisitions.inc({ outcome: result < 0 ? 'too_late' : 'contended' });
      if (attempt >= retries) return null;
      const ceiling = Math.min(retryMaxDelayMs, retryBaseDelayMs * 2 ** attempt);
      await sleep(Math.random() * ceiling);
    }
  }

  /**
   * Releases the lock if we still own it. Never throws: losing ownership (expired, taken
   * over) is a warning; a Redis failure is an error with the time left before the key expires
   * by itself. Returns true when our key was deleted.
   */
  async release(handle: LockHandle): Promise<boolean> {
    try {
      const deleted = Number(await this.client().eval(RELEASE_SCRIPT, 1, KEY_PREFIX + handle.key, handle.token)) === 1;
      if (deleted) {
        this.metrics.lockReleases.inc({ outcome: 'released' });
      } else {
        this.metrics.lockReleases.inc({ outcome: 'not_owner' });
        this.metrics.lockReleaseFailures.inc({ reason: 'not_owner' });
        this.logger.warn(`Lock "${handle.key}" was no longer ours at release (expired or taken over); nothing deleted`);
      }
      return deleted;
    } catch (error) {
      const reason = failureReason(error);
      this.metrics.lockReleases.inc({ outcome: 'failed' });
      this.metrics.lockReleaseFailures.inc({ reason });
      this.logger.error(
        `Releasing lock "${handle.key}" failed (${reason}): ${describe(error)}; it expires by itself in ${Math.max(0, handle.expiresAt - Date.now())} ms`,
      );
      return false;
    }
  }

  /** Extends the TTL if we still own the lock. Returns false when ownership is lost. Throws LockUnavailableError if Redis cannot be asked. */
  async extend(handle: LockHandle, ttlMs = handle.ttlMs): Promise<boolean> {
    try {
      const extended = Number(await this.client().eval(EXTEND_SCRIPT, 1, KEY_PREFIX + handle.key, handle.token, ttlMs)) === 1;
      if (extended) handle.expiresAt = Date.now() + ttlMs;
      return extended;
    } catch (error) {
      throw new LockUnavailableError(`Could not extend lock "${handle.key}": ${describe(error)}`, { cause: error });
    }
  }

  /**
   * Runs `work` under the lock, extending it every third of its TTL while the work runs. The
   * work's signal aborts when ownership is lost (an extension failed), so it can stop before
   * writing. The release never throws over the work's own result or error.
   * Returns null without running the work when the lock could not be taken.
   */
  async withLock<T>(
    name: string,
    options: AcquireOptions,
    work: (signal: AbortSignal, handle: LockHandle) => Promise<T>,
  ): Promise<{ result: T } | null> {
    const handle = await this.acquire(name, options);
    if (!handle) return null;
    const lost = new AbortController();
    const renewal = setInterval(() => {
      this.extend(handle).then(
        (extended) => {
          if (!extended) lost.abort(new Error(`lock "${name}" was lost`));
        },
        (error: unknown) => lost.abort(error),
      );
    }, Math.max(10, Math.floor(handle.ttlMs / 3)));
    try {
      return { result: await work(lost.signal, handle) };
    } finally {
      clearInterval(renewal);
      await this.release(handle);
    }
  }

  private client(): Redis {
    if (!this.redis) throw new LockUnavailableError('No REDIS_URL configured: the lock service is not available');
    return this.redis;
  }
}

function failureReason(error: unknown): 'timeout' | 'connection' | 'error' {
  const message = error instanceof Error ? error.message : String(error);
  if (/timed? ?out/i.test(message)) return 'timeout';
  if (/connect|stream|closed|ECONN|writeable/i.test(message)) return 'connection';
  return 'error';
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
