import { QueryFailedError, QueryRunnerAlreadyReleasedError } from 'typeorm';
import {
  ConcurrencyConflictError,
  DatabaseUnavailableError,
  LockTimeoutError,
} from '../errors/domain-errors';

/** SQLSTATE codes we act on (https://www.postgresql.org/docs/current/errcodes-appendix.html). */
export const PG_ERROR = {
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  idleInTransactionTimeout: '25P03',
  serializationFailure: '40001',
  deadlockDetected: '40P01',
  adminShutdown: '57P01',
  crashShutdown: '57P02',
  cannotConnectNow: '57P03',
  tooManyConnections: '53300',
  checkViolation: '23514',
  readOnlySqlTransaction: '25006',
} as const;

const UNAVAILABLE_CODES = new Set<string>([
  PG_ERROR.queryCanceled,
  PG_ERROR.idleInTransactionTimeout,
  PG_ERROR.adminShutdown,
  PG_ERROR.crashShutdown,
  PG_ERROR.cannotConnectNow,
  PG_ERROR.tooManyConnections,
  // Reached a standby: during a failover the balancer may route to a node that is still
  // finishing its promotion. Retrying shortly reaches the new primary.
  PG_ERROR.readOnlySqlTransaction,
]);

/** node-postgres and pg-pool report lost connections and timeouts as plain Errors. */
const CONNECTION_FAILURE_MESSAGES = [
  'timeout exceeded when trying to connect',
  'Connection terminated',
  'Query read timeout',
  'Client has encountered a connection error',
  'Connection terminated unexpectedly',
];
const CONNECTION_FAILURE_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENOTFOUND']);

export function sqlState(error: unknown): string | undefined {
  const source = error instanceof QueryFailedError ? (error.driverError as unknown) : error;
  const code = (source as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

export function isConnectionFailure(error: unknown): boolean {
  // TypeORM releases a query runner whose connection emitted an error; the next query on it says so.
  if (error instanceof QueryRunnerAlreadyReleasedError) return true;
  const source = error instanceof QueryFailedError ? (error.driverError as unknown) : error;
  if (!(source instanceof Error)) return false;
  const code = (source as { code?: unknown }).code;
  if (typeof code === 'string' && (CONNECTION_FAILURE_CODES.has(code) || code.startsWith('08'))) return true;
  return CONNECTION_FAILURE_MESSAGES.some((message) => source.message.includes(message));
}

/**
 * Whether a failure of COMMIT leaves its outcome unknown: the connection was lost or timed out,
 * or the server ended the session (it may have written the commit record first). Any other
 * error of COMMIT (a serialization failure, a deferred constraint) means it rolled back.
 */
export function isOutcomeAmbiguous(error: unknown): boolean {
  const code = sqlState(error);
  return isConnectionFailure(error) || code === PG_ERROR.adminShutdown || code === PG_ERROR.crashShutdown;
}

/**
 * Turns the database failures a client can do something about (retry later) into domain
 * errors; anything else is returned unchanged and ends as a 500.
 */
export function translateDatabaseError(error: unknown): unknown {
  const code = sqlState(error);
  if (code === PG_ERROR.lockNotAvailable) {
    return new LockTimeoutError('Gave up waiting for a row lock held by another transaction', { cause: error });
  }
  if (code === PG_ERROR.deadlockDetected || code === PG_ERROR.serializationFailure) {
    return new ConcurrencyConflictError('The transaction conflicted with a concurrent one', { cause: error });
  }
  if ((code !== undefined && UNAVAILABLE_CODES.has(code)) || isConnectionFailure(error)) {
    return new DatabaseUnavailableError('The database could not complete the request in time', { cause: error });
  }
  return error;
}
