import { InvalidTokenError } from './auth-errors';
import { callerFromClaims, readClaim } from './caller';

describe('readClaim', () => {
  it('reads a claim by its whole name first, even when the name contains dots (Auth0 namespaced claims)', () => {
    expect(readClaim({ 'https://example.com/roles': ['admin'] }, 'https://example.com/roles')).toEqual(['admin']);
    expect(readClaim({ 'a.b': 'whole', a: { b: 'path' } }, 'a.b')).toBe('whole');
  });

  it('reads a dotted path into nested claims otherwise (Keycloak realm_access.roles)', () => {
    expect(readClaim({ realm_access: { roles: ['admin'] } }, 'realm_access.roles')).toEqual(['admin']);
    expect(readClaim({ resource_access: { 'booking-api': { roles: ['x'] } } }, 'resource_access.booking-api.roles')).toEqual(['x']);
  });

  it('finds nothing through a missing step, a non-object, an array or an inherited property', () => {
    expect(readClaim({}, 'realm_access.roles')).toBeUndefined();
    expect(readClaim({ realm_access: 'admin' }, 'realm_access.roles')).toBeUndefined();
    expect(readClaim({ realm_access: [{ roles: ['admin'] }] }, 'realm_access.0.roles')).toBeUndefined();
    expect(readClaim({ sub: 'alice' }, 'constructor')).toBeUndefined();
    expect(readClaim({ sub: 'alice' }, 'sub.length')).toBeUndefined();
    expect(readClaim(JSON.parse('{"__proto__": {"roles": ["admin"]}}') as Record<string, unknown>, 'roles')).toBeUndefined();
  });
});

describe('callerFromClaims', () => {
  const names = { customerClaim: 'sub', rolesClaim: 'realm_access.roles', adminRole: 'booking-admin' };

  it('reads the customer id and the admin role where the configuration says', () => {
    expect(callerFromClaims({ sub: 'alice', realm_access: { roles: ['booking-admin'] } }, names)).toEqual({ customerId: 'alice', isAdmin: true });
    expect(callerFromClaims({ sub: 'bob', realm_access: { roles: ['admin'] } }, names)).toEqual({ customerId: 'bob', isAdmin: false });
    expect(callerFromClaims({ sub: 'carol' }, names)).toEqual({ customerId: 'carol', isAdmin: false });
  });

  it.each([
    ['no customer claim', { realm_access: { roles: [] } }, 'Invalid bearer token: the token has no "sub" claim'],
    ['an empty customer id', { sub: '' }, 'must be a string of 1 to 200 characters'],
    ['a customer id of 201 characters', { sub: 'x'.repeat(201) }, 'must be a string of 1 to 200 characters'],
    ['a NUL in the customer id', { sub: 'a\u0000b' }, 'must not contain the NUL character'],
    ['roles that are not an array of strings', { sub: 'alice', realm_access: { roles: 'booking-admin' } }, 'the token\'s "realm_access.roles" claim must be an array of strings'],
  ])('refuses %s', (_case, claims, message) => {
    expect(() => callerFromClaims(claims, names)).toThrow(InvalidTokenError);
    expect(() => callerFromClaims(claims, names)).toThrow(message);
  });
});
