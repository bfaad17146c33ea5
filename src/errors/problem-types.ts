import type { BookingOutcome } from '../observability/metrics';

/**
 * Every problem type the API answers with, described once: its status, title, when it is
 * answered and its extension members. The exception filter, the body-parsing middleware, the
 * OpenAPI document (problem.dto.ts, api-problems.decorator.ts) and the README's problem table
 * (checked by test/e2e/api-docs.e2e.spec.ts; rewrite it with `npm run docs:problems`) all read
 * it. An error class names its type with @Problem (domain-errors.ts); a new problem is a new
 * entry here and a decorated class.
 */

export interface ProblemField {
  type: 'string' | 'integer' | 'object' | 'fieldErrors' | 'stringOrInteger';
  description: string;
  enum?: readonly string[];
}

/** Every extension member a problem may carry. */
export const PROBLEM_FIELDS = {
  matchId: { type: 'string', description: 'the match' },
  bookingId: { type: 'string', description: 'the booking' },
  holdId: { type: 'string', description: 'the hold' },
  entryId: { type: 'string', description: 'the waitlist entry' },
  endpointId: { type: 'string', description: 'the webhook endpoint' },
  deliveryId: { type: 'string', description: 'the webhook delivery' },
  requestedSlots: { type: 'integer', description: 'slots asked for' },
  availableSlots: { type: 'integer', description: 'slots still available' },
  requestedCapacity: { type: 'integer', description: 'the capacity asked for' },
  bookedSlots: { type: 'integer', description: 'slots already booked' },
  heldSlots: { type: 'integer', description: 'slots held by live holds' },
  holdStatus: { type: 'string', description: 'the status of the hold', enum: ['active', 'confirmed', 'released', 'expired'] },
  errors: { type: 'fieldErrors', description: 'one entry per bad field' },
  limit: { type: 'stringOrInteger', description: 'rate-limited: the limit reached, `customer` or `ip`; customer-limit-reached: the most slots one customer may have in the match' },
  current: { type: 'integer', description: 'the slots the customer already has in the match (bookings and live holds)' },
  retryAfterSeconds: { type: 'integer', description: 'seconds to wait before retrying (also in Retry-After)' },
  checkStatus: { type: 'string', description: 'the overall status of the readiness checks' },
  info: { type: 'object', description: 'the checks that passed' },
  error: { type: 'object', description: 'the checks that failed' },
  details: { type: 'object', description: 'every check' },
} as const satisfies Record<string, ProblemField>;

export type ProblemFieldName = keyof typeof PROBLEM_FIELDS;

export interface ProblemType {
  status: number;
  title: string;
  /** When it is answered (the README's problem table). */
  when: string;
  /** Its extension members (besides retryAfterSeconds, added by `retryAfterSeconds`). */
  fields: readonly ProblemFieldName[];
  /** Exactly one of `fields` is present. */
  oneFieldOf?: true;
  /** A fixed public detail, for problems whose error message is meant for the log only. */
  detail?: string;
  /** A retryable problem: sent as retryAfterSeconds and as the Retry-After header. */
  retryAfterSeconds?: number;
  /** How a booking that fails with this problem is counted in booking_outcomes_total; null: not counted (no booking was attempted). Default: failed. */
  bookingOutcome?: BookingOutcome | null;
}

export const PROBLEM_TYPES = {
  'insufficient-slots': {
    status: 409,
    title: 'Not enough slots left',
    when: 'Fewer slots are available than requested',
    fields: ['matchId', 'requestedSlots', 'availableSlots'],
    bookingOutcome: 'insufficient_slots',
  },
  'capacity-below-booked': {
    status: 409,
    title: 'Capacity below booked slots',
    when: 'PATCH sets capacity below the slots already booked plus the live held ones',
    fields: ['matchId', 'requestedCapacity', 'bookedSlots', 'heldSlots'],
  },
  'customer-limit-reached': {
    status: 409,
    title: 'Customer limit reached',
    when: 'The booking, hold, reschedule or waitlist entry would give the customer more slots in the match than its `maxSlotsPerCustomer`',
    fields: ['matchId', 'limit', 'current', 'requestedSlots'],
    bookingOutcome: 'customer_limit_reached',
  },
  'slots-available': {
    status: 409,
    title: 'Slots available',
    when: 'Joining a waitlist while enough slots are available: book or hold them instead',
    fields: ['matchId', 'requestedSlots', 'availableSlots'],
  },
  'waitlist-entry-exists': {
    status: 409,
    title: 'Already on the waitlist',
    when: 'Joining the waitlist of a match where the customer has a waiting or offered entry',
    fields: ['matchId', 'entryId'],
  },
  'waitlist-entry-not-found': {
    status: 404,
    title: 'Waitlist entry not found',
    when: "No waitlist entry with that id, or not the caller's",
    fields: ['entryId'],
  },
  'booking-not-confirmed': {
    status: 409,
    title: 'Booking not confirmed',
    when: 'Rescheduling a cancelled booking',
    fields: ['bookingId'],
  },
  'hold-not-found': {
    status: 404,
    title: 'Hold not found',
    when: "No hold with that id, or not the caller's",
    fields: ['holdId'],
  },
  'hold-not-active': {
    status: 409,
    title: 'Hold not active',
    when: 'Confirming a confirmed or released hold; releasing a confirmed one',
    fields: ['holdId', 'holdStatus', 'bookingId'],
  },
  'hold-expired': {
    status: 410,
    title: 'Hold expired',
    when: 'Confirming a hold after `expiresAt`; its slots went back to the match',
    fields: ['holdId'],
  },
  'match-not-found': {
    status: 404,
    title: 'Match not found',
    when: 'No match with that id',
    fields: ['matchId'],
    bookingOutcome: 'match_not_found',
  },
  'booking-not-found': {
    status: 404,
    title: 'Booking not found',
    when: "No booking with that id, or not the caller's",
    fields: ['bookingId'],
  },
  'webhook-endpoint-not-found': {
    status: 404,
    title: 'Webhook endpoint not found',
    when: 'No webhook endpoint with that id',
    fields: ['endpointId'],
  },
  'webhook-delivery-not-found': {
    status: 404,
    title: 'Webhook delivery not found',
    when: 'No webhook delivery with that id',
    fields: ['deliveryId'],
  },
  'validation-failed': {
    status: 400,
    title: 'Invalid request',
    when: 'Invalid body, query, path parameter or header (also a body that is not a JSON object, or slots above `BOOKING_MAX_SLOTS`)',
    fields: ['errors'],
  },
  'malformed-json': {
    status: 400,
    title: 'Malformed JSON',
    when: 'The body is not valid JSON',
    fields: ['errors'],
    detail: 'The request body is not valid JSON',
  },
  'payload-too-large': {
    status: 413,
    title: 'Payload Too Large',
    when: 'The body exceeds `HTTP_BODY_LIMIT_BYTES`',
    fields: [],
  },
  'unsupported-media-type': {
    status: 415,
    title: 'Unsupported Media Type',
    when: 'A body sent without `Content-Type: application/json`',
    fields: [],
    detail: 'Send the request body as JSON with "Content-Type: application/json"',
  },
  'idempotency-key-reused': {
    status: 422,
    title: 'Idempotency-Key reused',
    when: 'The `Idempotency-Key` was first used with a different request',
    fields: [],
    bookingOutcome: null,
  },
  'idempotency-in-flight': {
    status: 409,
    title: 'Request in progress',
    when: 'A request with the same `Idempotency-Key` is still being processed',
    fields: [],
    retryAfterSeconds: 1,
    bookingOutcome: null,
  },
  'rate-limited': {
    status: 429,
    title: 'Too many requests',
    when: 'Too many writes from this customer (`limit`: `customer`) or IP address (`ip`) in the current window (see [Rate limits](#rate-limits)); `Retry-After` says when the window ends',
    fields: ['limit', 'retryAfterSeconds'],
  },
  'lock-timeout': {
    status: 503,
    title: 'Match is busy',
    when: 'The match row stayed locked longer than `lock_timeout`. Retry.',
    fields: [],
    detail: 'The match is being booked by many customers at once; retry shortly',
    retryAfterSeconds: 1,
    bookingOutcome: 'lock_timeout',
  },
  'concurrency-conflict': {
    status: 503,
    title: 'Concurrent update',
    when: 'Deadlock or serialization failure. Retry.',
    fields: [],
    detail: 'The request conflicted with a concurrent one; retry shortly',
    retryAfterSeconds: 1,
    bookingOutcome: 'unavailable',
  },
  'database-unavailable': {
    status: 503,
    title: 'Service unavailable',
    when: 'Pool exhausted, connection lost, statement timeout, database shutting down. Nothing was written: safe to retry',
    fields: [],
    detail: 'The database is unavailable or overloaded; retry shortly',
    retryAfterSeconds: 2,
    bookingOutcome: 'unavailable',
  },
  'outcome-unknown': {
    status: 503,
    title: 'Outcome unknown',
    when: 'The connection failed during `COMMIT` and the database could not be asked in time whether the booking, hold or waitlist entry was made (see [Idempotency-Key](#idempotency-key))',
    fields: ['bookingId', 'holdId', 'entryId'],
    oneFieldOf: true,
    retryAfterSeconds: 2,
    bookingOutcome: 'outcome_unknown',
  },
  'identity-provider-unavailable': {
    status: 503,
    title: 'Identity provider unavailable',
    when: "The identity provider's signing keys are needed to check the token but could not be fetched (none cached yet, or the token names a key that is not cached). Retry",
    fields: [],
    detail: "The identity provider's signing keys could not be fetched; retry shortly",
    retryAfterSeconds: 5,
    bookingOutcome: null,
  },
  'not-ready': {
    status: 503,
    title: 'Not ready',
    when: 'A readiness check failed (see [Health checks](#health-checks))',
    fields: ['checkStatus', 'info', 'error', 'details'],
    detail: 'One or more readiness checks failed',
  },
} as const satisfies Record<string, ProblemType>;

export type ProblemTypeName = keyof typeof PROBLEM_TYPES;

/** The extension members of a problem type, as its error class supplies them. */
export type ProblemExtensions<T extends ProblemTypeName> = Partial<Record<(typeof PROBLEM_TYPES)[T]['fields'][number], unknown>>;

/** Problem types are identified by relative URIs under /problems/. */
export function problemTypeUri(type: ProblemTypeName): string {
  return `/problems/${type}`;
}
