/**
 * Errors of the booking domain. They carry facts, not HTTP: problem-details.filter.ts is the
 * one place that turns them into responses.
 */
export abstract class DomainError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class MatchNotFoundError extends DomainError {
  constructor(readonly matchId: string) {
    super(`Match ${matchId} does not exist`);
  }
}

export class BookingNotFoundError extends DomainError {
  constructor(readonly bookingId: string) {
    super(`Booking ${bookingId} does not exist`);
  }
}

export class BookingNotConfirmedError extends DomainError {
  constructor(readonly bookingId: string) {
    super(`Booking ${bookingId} is cancelled and cannot be rescheduled`);
  }
}

export class InsufficientSlotsError extends DomainError {
  constructor(
    readonly matchId: string,
    readonly requestedSlots: number,
    readonly availableSlots: number,
  ) {
    super(`Match ${matchId} has ${availableSlots} slot(s) available; ${requestedSlots} requested`);
  }
}

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

export class HoldNotFoundError extends DomainError {
  constructor(readonly holdId: string) {
    super(`Hold ${holdId} does not exist`);
  }
}

/** The hold ran out before it was confirmed; its slots went back to the match. */
export class HoldExpiredError extends DomainError {
  constructor(readonly holdId: string) {
    super(`Hold ${holdId} has expired`);
  }
}

/** The hold was already confirmed or released. */
export class HoldNotActiveError extends DomainError {
  constructor(
    readonly holdId: string,
    readonly holdStatus: string,
    readonly bookingId: string | null,
  ) {
    super(`Hold ${holdId} is ${holdStatus}`);
  }
}

/** A bad value that only the service can judge (for example a limit from the configuration). */
export class InvalidInputError extends DomainError {
  constructor(
    readonly field: string,
    detail: string,
  ) {
    super(detail);
  }
}

/** The transaction gave up waiting for a row lock (lock_timeout). Safe to retry. */
export class LockTimeoutError extends DomainError {}

/** The database could not serve the request in time or at all (pool exhausted, connection lost, statement timeout). */
export class DatabaseUnavailableError extends DomainError {}

/**
 * The connection failed after COMMIT was sent (lost, reset, timed out, or the server shut down):
 * the transaction may have committed or not. TransactionRunner raises it; a write whose plain
 * retry would not be harmless asks the database what happened (CommitOutcomes). Answered as
 * database-unavailable by the writes whose retry is harmless.
 */
export class CommitOutcomeUnknownError extends DatabaseUnavailableError {}

/**
 * A write may or may not have happened, and the database could not be asked in time: the
 * client must not simply send it again, but retry with the same Idempotency-Key or look the
 * resource up by its id.
 */
export class OutcomeUnknownError extends DomainError {
  constructor(
    readonly resource: 'booking' | 'hold',
    readonly id: string,
    options?: ErrorOptions,
  ) {
    super(
      `The database connection failed while the ${resource} ${id} was being committed, and the database could not be asked in time whether it was. ` +
        `It may exist: retry with the same Idempotency-Key, or look it up with GET /api/v1/${resource}s/${id} (404: it was not made).`,
      options,
    );
  }
}

/** A deadlock or serialization failure that outlived its retries. Safe to retry. */
export class ConcurrencyConflictError extends DomainError {}

/** A request with this Idempotency-Key is being processed right now. Safe to retry shortly. */
export class IdempotencyInFlightError extends DomainError {
  constructor(readonly key: string) {
    super(`A request with Idempotency-Key "${key}" is still being processed`);
  }
}

/** The Idempotency-Key was first used with a different request. */
export class IdempotencyKeyReusedError extends DomainError {
  constructor(readonly key: string) {
    super(`Idempotency-Key "${key}" was already used with a different request`);
  }
}
