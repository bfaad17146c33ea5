import type { QueryRunner } from 'typeorm';
import type { TransactionHooks } from '../database/transaction-runner';
import { IdempotencyInFlightError } from '../errors/domain-errors';
import { type IdempotencyScope, IdempotencyRepository, type StoredResponse } from './idempotency.repository';

/**
 * Ends a write whose key turned out to have a committed record: its transaction rolls back and
 * IdempotencyService answers with the record. Only IdempotencyService catches it.
 */
export class ReplayStoredResponse extends Error {
  constructor(readonly stored: StoredResponse) {
    super('replay the stored response');
  }
}

/**
 * The one object a write gets when its request carries an Idempotency-Key: the key's scope, and
 * the steps that make the write's answer its record in the write's own transaction.
 *
 * A write run by TransactionRunner passes it as its hooks: `before` claims the key (the backstop
 * of the in-flight lock: another request holding the key is in flight; a committed record is
 * replayed), `after` records the answer. A write that decides many requests in one statement
 * (the coalesced bookings, reservations.ts) claims their scopes together
 * (IdempotencyRepository.claimScopes) and writes each `recordOf(answer)` in that statement.
 */
export class IdempotentWrite implements TransactionHooks {
  constructor(
    readonly scope: IdempotencyScope,
    /** Hash of what makes two requests "the same": method, route, path parameters and body. */
    readonly requestHash: string,
    /** The status a success answers with, stored and replayed with the body. */
    readonly successStatus: number,
    readonly ttlMs: number,
    private readonly records: IdempotencyRepository,
  ) {}

  /** The record of a successful answer: its body is what is sent (Dates become ISO strings). */
  recordOf(answer: unknown): StoredResponse {
    return { requestHash: this.requestHash, status: this.successStatus, body: JSON.parse(JSON.stringify(answer)) as unknown };
  }

  /** The error that settles this write when its scope turned out to be in flight or recorded. */
  settledBy(claim: { locked: boolean; stored: StoredResponse | undefined }): Error | undefined {
    if (!claim.locked) return new IdempotencyInFlightError(this.scope.key);
    return claim.stored && new ReplayStoredResponse(claim.stored);
  }

  readonly before = async (queryRunner: QueryRunner): Promise<void> => {
    const { claims } = await this.records.claimScopes(queryRunner, [this.scope]);
    const settled = this.settledBy(claims[0]!);
    if (settled) throw settled;
  };

  readonly after = async (queryRunner: QueryRunner, answer: unknown): Promise<void> => {
    if (await this.records.insert(queryRunner, this.scope, this.recordOf(answer), this.ttlMs)) return;
    // An unexpired record appeared after the claim (a writer that took no advisory lock): replay it.
    const committed = await this.records.find(this.scope, queryRunner);
    if (committed) throw new ReplayStoredResponse(committed);
  };
}
