import { Problem } from './problem';

/**
 * Errors of the booking domain. They carry facts, not HTTP: each names its problem type
 * (problem-types.ts describes them all), and problem-details.filter.ts answers with it.
 */
export abstract class DomainError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

@Problem('match-not-found', (e: MatchNotFoundError) => ({ matchId: e.matchId }))
export class MatchNotFoundError extends DomainError {
  constructor(readonly matchId: string) {
    super(`Match ${matchId} does not exist`);
  }
}

@Problem('booking-not-found', (e: BookingNotFoundError) => ({ bookingId: e.bookingId }))
export class BookingNotFoundError extends DomainError {
  constructor(readonly bookingId: string) {
    super(`Booking ${bookingId} does not exist`);
  }
}

@Problem('booking-not-confirmed', (e: BookingNotConfirmedError) => ({ bookingId: e.bookingId }))
export class BookingNotConfirmedError extends DomainError {
  constructor(readonly bookingId: string) {
    super(`Booking ${bookingId} is cancelled and cannot be rescheduled`);
  }
}

@Problem('insufficient-slots', (e: InsufficientSlotsError) => ({ matchId: e.matchId, requestedSlots: e.requestedSlots, availableSlots: e.availableSlots }))
export class InsufficientSlotsError extends DomainError {
  constructor(
    readonly matchId: string,
    readonly requestedSlots: number,
    readonly availableSlots: number,
  ) {
    super(`Match ${matchId} has ${availableSlots} slot(s) available; ${requestedSlots} requested`);
  }
}

/** The take would give the customer more slots in the match than its per-customer limit. */
@Problem('customer-limit-reached', (e: CustomerLimitReachedError) => ({ matchId: e.matchId, limit: e.limit, current: e.current, requestedSlots: e.requestedSlots }))
export class CustomerLimitReachedError extends DomainError {
  constructor(
    readonly matchId: string,
    readonly limit: number,
    readonly current: number,
    readonly requestedSlots: number,
  ) {
    super(`A customer may have at most ${limit} slot(s) in match ${matchId}; this customer has ${current} and asked for ${requestedSlots} more`);
  }
}

/** A waitlist is for matches without room: the slots asked for are available now. */
@Problem('slots-available', (e: SlotsAvailableError) => ({ matchId: e.matchId, requestedSlots: e.requestedSlots, availableSlots: e.availableSlots }))
export class SlotsAvailableError extends DomainError {
  constructor(
    readonly matchId: string,
    readonly requestedSlots: number,
    readonly availableSlots: number,
  ) {
    super(`Match ${matchId} has ${availableSlots} slot(s) available; book them instead of joining its waitlist for ${requestedSlots}`);
  }
}

@Problem('waitlist-entry-exists', (e: WaitlistEntryExistsError) => ({ matchId: e.matchId, entryId: e.entryId }))
export class WaitlistEntryExistsError extends DomainError {
  constructor(
    readonly matchId: string,
    readonly entryId: string,
  ) {
    super(`The customer is already on the waitlist of match ${matchId} (entry ${entryId})`);
  }
}

@Problem('waitlist-entry-not-found', (e: WaitlistEntryNotFoundError) => ({ entryId: e.entryId }))
export class WaitlistEntryNotFoundError extends DomainError {
  constructor(readonly entryId: string) {
    super(`Waitlist entry ${entryId} does not exist`);
  }
}

@Problem('capacity-below-booked', (e: CapacityBelowBookedError) => ({
  matchId: e.matchId,
  requestedCapacity: e.requestedCapacity,
  bookedSlots: e.bookedSlots,
  heldSlots: e.heldSlots,
}))
export class CapacityBelowBookedError extends DomainError {
  constructor(
    readonly matchId: string,
    readonly requestedCapacity: number,
    readonly bookedSlots: number,
    readonly heldSlots: number,
  ) {
    super(`Match ${matchId} has ${bookedSlots} slot(s) booked and ${heldSlots} held; capacity cannot go down to ${requestedCapacity}`);
  }
}

@Problem('hold-not-found', (e: HoldNotFoundError) => ({ holdId: e.holdId }))
export class HoldNotFoundError extends DomainError {
  constructor(readonly holdId: string) {
    super(`Hold ${holdId} does not exist`);
  }
}

/** The hold ran out before it was confirmed; its slots went back to the match. */
@Problem('hold-expired', (e: HoldExpiredError) => ({ holdId: e.holdId }))
export class HoldExpiredError extends DomainError {
  constructor(readonly holdId: string) {
    super(`Hold ${holdId} has expired`);
  }
}

/** The hold was already confirmed or released. */
@Problem('hold-not-active', (e: HoldNotActiveError) => ({ holdId: e.holdId, holdStatus: e.holdStatus, bookingId: e.bookingId }))
export class HoldNotActiveError extends DomainError {
  constructor(
    readonly holdId: string,
    readonly holdStatus: string,
    readonly bookingId: string | null,
  ) {
    super(`Hold ${holdId} is ${holdStatus}`);
  }
}

@Problem('webhook-endpoint-not-found', (e: WebhookEndpointNotFoundError) => ({ endpointId: e.endpointId }))
export class WebhookEndpointNotFoundError extends DomainError {
  constructor(readonly endpointId: string) {
    super(`Webhook endpoint ${endpointId} does not exist`);
  }
}

@Problem('webhook-delivery-not-found', (e: WebhookDeliveryNotFoundError) => ({ deliveryId: e.deliveryId }))
export class WebhookDeliveryNotFoundError extends DomainError {
  constructor(readonly deliveryId: string) {
    super(`Webhook delivery ${deliveryId} does not exist`);
  }
}

/** A bad value that only the service can judge (for example a limit from the configuration). */
@Problem('validation-failed', (e: InvalidInputError) => ({ errors: [{ field: e.field, message: e.message }] }))
export class InvalidInputError extends DomainError {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(detail);
  }
}

/** The transaction gave up waiting for a row lock (lock_timeout). Safe to retry. */
@Problem('lock-timeout')
export class LockTimeoutError extends DomainError {}

/** The database could not serve the request in time or at all (pool exhausted, connection lost, statement timeout). */
@Problem('database-unavailable')
export class DatabaseUnavailableError extends DomainError {}

/**
 * The connection failed after COMMIT was sent (lost, reset, timed out, or the server shut down):
 * the transaction may have committed or not. TransactionRunner raises it; a write whose plain
 * retry would not be harmless asks the database what happened (CommitOutcomes). Answered as
 * database-unavailable by the writes whose retry is harmless.
 */
export class CommitOutcomeUnknownError extends DatabaseUnavailableError {}

/** The resources a write may leave in doubt: the problem member naming it, and where to look it up. */
const OUTCOME_RESOURCES = {
  booking: { field: 'bookingId', path: 'bookings' },
  hold: { field: 'holdId', path: 'holds' },
  'waitlist entry': { field: 'entryId', path: 'waitlist' },
} as const;

/**
 * A write may or may not have happened, and the database could not be asked in time: the
 * client must not simply send it again, but retry with the same Idempotency-Key or look the
 * resource up by its id.
 */
@Problem('outcome-unknown', (e: OutcomeUnknownError) => ({ [OUTCOME_RESOURCES[e.resource].field]: e.id }))
export class OutcomeUnknownError extends DomainError {
  constructor(
    readonly resource: keyof typeof OUTCOME_RESOURCES,
    readonly id: string,
    options?: ErrorOptions,
  ) {
    super(
      `The database connection failed while the ${resource} ${id} was being committed, and the database could not be asked in time whether it was. ` +
        `It may exist: retry with the same Idempotency-Key, or look it up with GET /api/v1/${OUTCOME_RESOURCES[resource].path}/${id} (404: it was not made).`,
      options,
    );
  }
}

/** A deadlock or serialization failure that outlived its retries. Safe to retry. */
@Problem('concurrency-conflict')
export class ConcurrencyConflictError extends DomainError {}

/** A request with this Idempotency-Key is being processed right now. Safe to retry shortly. */
@Problem('idempotency-in-flight')
export class IdempotencyInFlightError extends DomainError {
  constructor(readonly key: string) {
    super(`A request with Idempotency-Key "${key}" is still being processed`);
  }
}

/** The Idempotency-Key was first used with a different request. */
@Problem('idempotency-key-reused')
export class IdempotencyKeyReusedError extends DomainError {
  constructor(readonly key: string) {
    super(`Idempotency-Key "${key}" was already used with a different request`);
  }
}
