import { Problem } from '../errors/problem';

/**
 * A request whose bearer token is missing or not accepted. Its message is the public detail of
 * the 401 answer: it says why, and never contains the token, a secret or a library's wording.
 */
export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
}

/** The token was not accepted, for this reason. */
export function refusedToken(reason: string): InvalidTokenError {
  return new InvalidTokenError(`Invalid bearer token: ${reason}`);
}

/**
 * The identity provider's keys are needed but could not be fetched: nothing is cached yet, or
 * the token names a key the cache lacks and the fetch for it failed. The token is not known to
 * be bad, so the answer is 503 (retry), not 401 (sign in again).
 */
@Problem('identity-provider-unavailable')
export class IdentityProviderUnavailableError extends Error {
  override readonly name = 'IdentityProviderUnavailableError';
}
