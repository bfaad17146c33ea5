import type { AuthConfig } from '../config/app-config';
import { refusedToken } from './auth-errors';

/** Who is asking: the customer id from the token's customer claim, and whether its roles include the admin role. */
export interface Caller {
  customerId: string;
  isAdmin: boolean;
}

/** Where a token's claims name the caller (AUTH_CUSTOMER_CLAIM, AUTH_ROLES_CLAIM, AUTH_ADMIN_ROLE). */
export type ClaimNames = Pick<AuthConfig, 'customerClaim' | 'rolesClaim' | 'adminRole'>;

const MAX_CUSTOMER_ID_LENGTH = 200;

/**
 * A claim by its whole name first, so that a namespaced claim such as Auth0's
 * "https://example.com/roles" is found although it contains dots; otherwise the name is read as
 * a dotted path into nested claims, such as Keycloak's "realm_access.roles". Only own
 * properties count: "constructor" or "__proto__" name nothing.
 */
export function readClaim(claims: Record<string, unknown>, name: string): unknown {
  if (Object.hasOwn(claims, name)) return claims[name];
  let value: unknown = claims;
  for (const part of name.split('.')) {
    if (typeof value !== 'object' || value === null || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** The caller a verified token's claims name; refuses claims that name none. */
export function callerFromClaims(claims: Record<string, unknown>, names: ClaimNames): Caller {
  const customerId = readClaim(claims, names.customerClaim);
  if (customerId === undefined) throw refusedToken(`the token has no "${names.customerClaim}" claim`);
  if (typeof customerId !== 'string' || customerId.length === 0 || customerId.length > MAX_CUSTOMER_ID_LENGTH) {
    throw refusedToken(`the token's "${names.customerClaim}" claim must be a string of 1 to ${MAX_CUSTOMER_ID_LENGTH} characters`);
  }
  // The customer id is stored as PostgreSQL text, which cannot hold NUL.
  if (customerId.includes('\u0000')) throw refusedToken(`the token's "${names.customerClaim}" claim must not contain the NUL character`);
  const roles = readClaim(claims, names.rolesClaim);
  if (roles !== undefined && !(Array.isArray(roles) && roles.every((role) => typeof role === 'string'))) {
    throw refusedToken(`the token's "${names.rolesClaim}" claim must be an array of strings`);
  }
  return { customerId, isAdmin: Array.isArray(roles) && roles.includes(names.adminRole) };
}
