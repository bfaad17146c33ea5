import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { IdempotencyInFlightError, IdempotencyKeyReusedError } from '../errors/domain-errors';
import { type LockHandle, LockService, LockUnavailableError } from '../locks/lock.service';
import { REDIS_CLIENT } from '../redis/redis.module';
import { type IdempotencyScope, IdempotencyRepository, type StoredResponse } from './idempotency.repository';
import type { IdempotencyKeyed } from './idempotent.decorator';
import { IdempotentWrite, ReplayStoredResponse } from './idempotent-write';

export interface IdempotentRequest {
  scope: IdempotencyScope;
  /** Hash of what makes two requests "the same": method, route, path parameters and body. */
  requestHash: string;
  /** The status a success answers with, stored and replayed with the body. */
  successStatus: number;
}

type IdempotentOutcome<T> = { replayed: false; value: T } | { replayed: true; status: number; body: unknown };

const IN_FLIGHT_TTL_MS = 60_000;

/**
 * Idempotency-Key handling (IETF httpapi-idempotency-key-header draft): the same key and the same
 * request replay the first success; the same key with another request is a 422; a key whose
 * first request is still running is a 409. Only successes are stored, so a retry after a 409,
 * 429 or 5xx runs again. PostgreSQL is the truth (the record commits with the write, see
 * idempotent-write.ts); Redis holds the in-flight lock and a cache of completed responses, and
 * the service works without it. Routes opt in with @IdempotencyKey() (idempotent.decorator.ts).
 */
@Injectable()
export class IdempotencyService {
  private readonly logger = new Logger(IdempotencyService.name);
  private readonly ttlMs: number;
  /** Scopes of writes running in this instance: a retry arriving meanwhile is told at once, even without Redis. */
  private readonly inFlightHere = new Set<string>();

  constructor(
    private readonly records: IdempotencyRepository,
    private readonly locks: LockService,
    @Inject(REDIS_CLIENT) private readonly redis: Redis | null,
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'idempotency'>,
  ) {
    this.ttlMs = config.idempotency.keyTtlMs;
  }

  static hashRequest(parts: unknown): string {
    return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  }

  /**
   * A route's write: without an Idempotency-Key it just runs. With one, it runs once per key
   * (execute); a retry gets the recorded answer, marked as a replay, which is the JSON of an
   * earlier T (Dates as ISO strings).
   */
  async run<T>(keyed: IdempotencyKeyed | undefined, operation: (write: IdempotentWrite | undefined) => Promise<T>): Promise<T> {
    if (keyed === undefined) return operation(undefined);
    const outcome = await this.execute(keyed.request, operation);
    if (!outcome.replayed) return outcome.value;
    keyed.replayed(outcome.status);
    return outcome.body as T;
  }

  /** Runs the write once per key: replays a recorded answer, or runs `operation` with the IdempotentWrite it must pass on. */
  private async execute<T>(request: IdempotentRequest, operation: (write: IdempotentWrite) => Promise<T>): Promise<IdempotentOutcome<T>> {
    const { scope } = request;
    const stored = await this.lookup(scope);
    if (stored) return this.replay(stored, request);

    const here = redisKey(scope);
    if (this.inFlightHere.has(here)) throw new IdempotencyInFlightError(scope.key);
    this.inFlightHere.add(here);
    let inFlight: LockHandle | null = null;
    try {
      inFlight = await this.acquireInFlight(scope);
      const write = new IdempotentWrite(scope, request.requestHash, request.successStatus, this.ttlMs, this.records);
      const value = await operation(write);
      await this.cache(scope, write.recordOf(value));
      return { replayed: false, value };
    } catch (error) {
      if (error instanceof ReplayStoredResponse) return this.replay(error.stored, request);
      throw error;
    } finally {
      this.inFlightHere.delete(here);
      if (inFlight) await this.locks.release(inFlight);
    }
  }

  private replay<T>(stored: StoredResponse, request: IdempotentRequest): IdempotentOutcome<T> {
    if (stored.requestHash !== request.requestHash) throw new IdempotencyKeyReusedError(request.scope.key);
    return { replayed: true, status: stored.status, body: stored.body };
  }

  /** Null when Redis cannot be asked: the advisory lock in the transaction then guards alone. */
  private async acquireInFlight(scope: IdempotencyScope): Promise<LockHandle | null> {
    if (!this.locks.available) return null;
    try {
      const handle = await this.locks.acquire(`idempotency:${redisKey(scope)}`, { ttlMs: IN_FLIGHT_TTL_MS });
      if (!handle) throw new IdempotencyInFlightError(scope.key);
      return handle;
    } catch (error) {
      if (error instanceof LockUnavailableError) return null;
      throw error;
    }
  }

  /** Redis first (a fast path, errors ignored), then PostgreSQL, the truth. */
  private async lookup(scope: IdempotencyScope): Promise<StoredResponse | undefined> {
    if (this.redis && this.locks.available) {
      try {
        const cached = await this.redis.get(`idempotency-response:${redisKey(scope)}`);
        if (cached) return JSON.parse(cached) as StoredResponse;
      } catch (error) {
        this.logger.debug(`Idempotency cache unavailable: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
    return this.records.find(scope);
  }

  private async cache(scope: IdempotencyScope, response: StoredResponse): Promise<void> {
    if (!this.redis || !this.locks.available) return;
    try {
      await this.redis.set(`idempotency-response:${redisKey(scope)}`, JSON.stringify(response), 'PX', this.ttlMs);
    } catch (error) {
      this.logger.debug(`Idempotency cache unavailable: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
}

function redisKey(scope: IdempotencyScope): string {
  return createHash('sha256').update(`${scope.customerId}\u0000${scope.endpoint}\u0000${scope.key}`).digest('hex');
}
