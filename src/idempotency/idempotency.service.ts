import { Inject, Injectable, Logger } from '@nestjs/common';
import { createHash } from 'node:crypto';
import type Redis from 'ioredis';
import type { QueryRunner } from 'typeorm';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import type { TransactionHooks } from '../database/transaction-runner';
import { IdempotencyInFlightError, IdempotencyKeyReusedError } from '../errors/domain-errors';
import { type LockHandle, LockService, LockUnavailableError } from '../locks/lock.service';
import { REDIS_CLIENT } from '../redis/redis.module';
import { type IdempotencyScope, IdempotencyRepository, type StoredResponse } from './idempotency.repository';

export interface IdempotentRequest {
  scope: IdempotencyScope;
  /** Hash of what makes two requests "the same": method, route, path parameters and body. */
  requestHash: string;
  /** The status a success answers with, stored and replayed with the body. */
  successStatus: number;
}

export type IdempotentOutcome<T> = { replayed: false; value: T } | { replayed: true; status: number; body: unknown };

/** What a write must record, in its own transaction, when it succeeds. */
export interface IdempotencyClaim {
  scope: IdempotencyScope;
  requestHash: string;
  successStatus: number;
  ttlMs: number;
}

/**
 * Handed to the write. A write run by TransactionRunner passes it on as its hooks (the record is
 * claimed before the work and written after it); a write that records many requests in one
 * statement (the coalesced bookings) uses `claim` and settles with ReplayStoredResponse or
 * IdempotencyInFlightError itself.
 */
export interface IdempotencyGuard extends TransactionHooks {
  claim: IdempotencyClaim;
}

/** Ends a write whose key turned out to have a committed record: roll back and replay the record. */
export class ReplayStoredResponse extends Error {
  constructor(readonly stored: StoredResponse) {
    super('replay the stored response');
  }
}

/** The record of a successful write: its body is what Express sends (Dates become ISO strings). */
export function storedResponse(claim: IdempotencyClaim, value: unknown): StoredResponse {
  return { requestHash: claim.requestHash, status: claim.successStatus, body: toJson(value) };
}

const IN_FLIGHT_TTL_MS = 60_000;

/**
 * Idempotency-Key handling (IETF httpapi-idempotency-key-header draft): the same key and the same
 * request replay the first success; the same key with another request is a 422; a key whose
 * first request is still running is a 409. Only successes are stored, so a retry after a 409,
 * 429 or 5xx runs again. PostgreSQL is the truth (the record commits with the write); Redis
 * holds the in-flight lock and a cache of completed responses, and the service works without it.
 */
@Injectable()
export class IdempotencyService {
  private readonly logger = new Logger(IdempotencyService.name);
  private readonly ttlMs: number;

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

  async execute<T>(request: IdempotentRequest | undefined, operation: (guard?: IdempotencyGuard) => Promise<T>): Promise<IdempotentOutcome<T>> {
    if (!request) return { replayed: false, value: await operation() };
    const { scope } = request;
    const stored = await this.lookup(scope);
    if (stored) return this.replay(stored, request);

    const claim: IdempotencyClaim = { scope, requestHash: request.requestHash, successStatus: request.successStatus, ttlMs: this.ttlMs };
    const inFlight = await this.acquireInFlight(scope);
    try {
      const value = await operation({
        claim,
        before: async (queryRunner: QueryRunner) => {
          // The backstop of the Redis lock, and the only guard when Redis is down.
          const { claims } = await this.records.claimScopes(queryRunner, [scope]);
          if (!claims[0]!.locked) throw new IdempotencyInFlightError(scope.key);
          if (claims[0]!.stored) throw new ReplayStoredResponse(claims[0]!.stored);
        },
        after: async (queryRunner: QueryRunner, result: unknown) => {
          if (!(await this.records.insert(queryRunner, scope, storedResponse(claim, result), this.ttlMs))) {
            const committed = await this.records.find(scope, queryRunner);
            if (committed) throw new ReplayStoredResponse(committed);
          }
        },
      });
      await this.cache(scope, storedResponse(claim, value));
      return { replayed: false, value };
    } catch (error) {
      if (error instanceof ReplayStoredResponse) return this.replay(error.stored, request);
      throw error;
    } finally {
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

/** What Express would send: Dates become ISO strings. */
function toJson(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value)) as unknown;
}
