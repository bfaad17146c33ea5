import type { Request, Response } from 'express';
import type { Caller } from '../bookings/booking';
import { RequestValidationError } from '../errors/request-validation';
import { type IdempotentOutcome, type IdempotentRequest, IdempotencyService } from './idempotency.service';

export const IDEMPOTENCY_KEY_HEADER = 'Idempotency-Key';
export const REPLAYED_HEADER = 'Idempotent-Replayed';
const ACCEPTED_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Reads the optional Idempotency-Key header of a write. The key is scoped to the caller and to
 * `endpoint` (the route template); the hash covers the path parameters and the body.
 */
export function idempotentRequest(request: Request, caller: Caller, endpoint: string, successStatus: number): IdempotentRequest | undefined {
  const header = request.headers[IDEMPOTENCY_KEY_HEADER.toLowerCase()];
  if (header === undefined) return undefined;
  // A structured-field string ("key") or a bare token are both accepted.
  const key = (Array.isArray(header) ? header.join(',') : header).trim().replace(/^"(.*)"$/, '$1');
  if (!ACCEPTED_KEY.test(key)) {
    throw new RequestValidationError([
      { field: IDEMPOTENCY_KEY_HEADER, message: `${IDEMPOTENCY_KEY_HEADER} must be 1 to 255 visible ASCII characters` },
    ]);
  }
  return {
    scope: { customerId: caller.customerId, endpoint, key },
    requestHash: IdempotencyService.hashRequest({ endpoint, params: request.params, body: request.body as unknown }),
    successStatus,
  };
}

/** Sends a replayed response as it was first sent, marked by the Idempotent-Replayed header. */
export function respond<T>(response: Response, outcome: IdempotentOutcome<T>): unknown {
  if (!outcome.replayed) return outcome.value;
  response.status(outcome.status);
  response.setHeader(REPLAYED_HEADER, 'true');
  return outcome.body;
}
