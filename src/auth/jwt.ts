import { createSecretKey, type KeyObject } from 'node:crypto';
import jwt from 'jsonwebtoken';
import type { Caller } from './caller';

export const ADMIN_ROLE = 'admin';
const MAX_SUBJECT_LENGTH = 200;

export class InvalidTokenError extends Error {
  override readonly name = 'InvalidTokenError';
}

/**
 * Handed a string, jsonwebtoken first tries to parse it as a PEM public key (createPublicKey),
 * which fails and costs milliseconds of CPU on every request; a secret KeyObject skips that.
 * Keyed by the secret: a process has one or two (the tests), so this never grows.
 */
const secretKeys = new Map<string, KeyObject>();
function secretKey(secret: string): KeyObject {
  let key = secretKeys.get(secret);
  if (!key) {
    key = createSecretKey(Buffer.from(secret, 'utf8'));
    secretKeys.set(secret, key);
  }
  return key;
}

/** Verifies an HS256 token (signature, expiry, not-before) and reads the caller from it. */
export function verifyAccessToken(token: string, secret: string): Caller {
  let payload: string | jwt.JwtPayload;
  try {
    // Pinning the algorithm refuses "alg: none" and algorithm-confusion tokens.
    payload = jwt.verify(token, secretKey(secret), { algorithms: ['HS256'] });
  } catch (error) {
    const reason = error instanceof jwt.TokenExpiredError ? 'the token has expired' : 'the token is malformed or wrongly signed';
    throw new InvalidTokenError(reason, { cause: error });
  }
  if (typeof payload === 'string') throw new InvalidTokenError('the token has no JSON claims');
  const { sub, roles } = payload;
  if (typeof sub !== 'string' || sub.length === 0 || sub.length > MAX_SUBJECT_LENGTH) {
    throw new InvalidTokenError(`the token's "sub" claim must be a string of 1 to ${MAX_SUBJECT_LENGTH} characters`);
  }
  // The customer id is stored as PostgreSQL text, which cannot hold NUL.
  if (sub.includes('\u0000')) throw new InvalidTokenError(`the token's "sub" claim must not contain the NUL character`);
  if (roles !== undefined && !(Array.isArray(roles) && roles.every((role) => typeof role === 'string'))) {
    throw new InvalidTokenError(`the token's "roles" claim must be an array of strings`);
  }
  return { customerId: sub, isAdmin: Array.isArray(roles) && roles.includes(ADMIN_ROLE) };
}

export function signAccessToken(
  claims: { sub: string; admin: boolean },
  secret: string,
  expiresInSeconds: number,
): string {
  return jwt.sign({ sub: claims.sub, roles: claims.admin ? [ADMIN_ROLE] : [] }, secretKey(secret), {
    algorithm: 'HS256',
    expiresIn: expiresInSeconds,
  });
}
