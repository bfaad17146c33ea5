import { createHmac } from 'node:crypto';

/** The role that signAccessToken gives an admin: AUTH_ADMIN_ROLE's default. */
export const ADMIN_ROLE = 'admin';

/**
 * An HS256 token with the default claims (`sub`, `roles`), for development, the tests and the
 * benchmarks. Signed here rather than with jose because jose signs asynchronously, and the
 * token helpers of the tests and tools are synchronous; Authenticator verifies it with jose.
 */
export function signAccessToken(claims: { sub: string; admin: boolean }, secret: string, expiresInSeconds: number): string {
  const issuedAt = Math.floor(Date.now() / 1000);
  const encode = (part: object): string => Buffer.from(JSON.stringify(part)).toString('base64url');
  const signingInput = `${encode({ alg: 'HS256', typ: 'JWT' })}.${encode({
    sub: claims.sub,
    roles: claims.admin ? [ADMIN_ROLE] : [],
    iat: issuedAt,
    exp: issuedAt + expiresInSeconds,
  })}`;
  return `${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`;
}
