import { CompactSign, generateKeyPair, SignJWT } from 'jose';
import request from 'supertest';
import { jwtSecretOf, startTestApp, type TestApp } from '../support/test-app';
import { adminAuth, API, book, createMatch, databaseSnapshot, expectProblem, UNKNOWN_ID } from './helpers';

describe('Authentication and roles', () => {
  let t: TestApp;
  let secret: string;
  let matchId: string;
  let bookingId: string;

  beforeAll(async () => {
    t = await startTestApp();
    secret = jwtSecretOf(t.config);
    matchId = (await createMatch(t, { capacity: 50 })).id;
    bookingId = (await book(t, 'alice', matchId, 1)).id;
  });

  afterAll(async () => {
    await t.close();
  });

  const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');
  const nowSeconds = (): number => Math.floor(Date.now() / 1000);
  const key = (text: string): Uint8Array => new TextEncoder().encode(text);
  /** A token with these claims, signed with `algorithm` and `signingKey` (this app's secret and HS256 unless given). */
  const signWith = (payload: object, algorithm = 'HS256', signingKey: Parameters<SignJWT['sign']>[0] = key(secret)): Promise<string> =>
    new SignJWT({ ...payload }).setProtectedHeader({ alg: algorithm, typ: 'JWT' }).sign(signingKey);
  /** An HS256 token with this app's secret, valid for an hour unless the payload sets its own exp. */
  const sign = (payload: object): Promise<string> => signWith({ exp: nowSeconds() + 3600, ...payload });

  /** Every header value that must be answered 401; built lazily because the secret is known only after start. */
  const badAuthorizations: Array<[string, () => string | undefined | Promise<string | undefined>]> = [
    ['no Authorization header', () => undefined],
    ['an empty Authorization header', () => ''],
    ['the Basic scheme', () => `Basic ${Buffer.from('alice:secret').toString('base64')}`],
    ['"Bearer" without a token', () => 'Bearer'],
    ['"Bearer " followed by spaces only', () => 'Bearer    '],
    ['a token that is not a JWT', () => 'Bearer not-a-jwt'],
    ['a token with two parts', () => `Bearer ${base64url({ alg: 'HS256' })}.${base64url({ sub: 'alice' })}`],
    ['a token with a tampered payload', async () => {
      const [header, , signature] = (await sign({ sub: 'alice', roles: [] })).split('.');
      return `Bearer ${header}.${base64url({ sub: 'alice', roles: ['admin'], exp: nowSeconds() + 3600 })}.${signature}`;
    }],
    ['a token signed with another secret', async () => `Bearer ${await signWith({ sub: 'alice' }, 'HS256', key('another-secret-of-at-least-32-characters!!'))}`],
    ['an expired token', async () => `Bearer ${await sign({ sub: 'alice', exp: nowSeconds() - 60 })}`],
    ['a token that is not valid yet (nbf in the future)', async () => `Bearer ${await sign({ sub: 'alice', nbf: nowSeconds() + 600 })}`],
    ['an unsigned token (alg "none")', () => `Bearer ${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: 'alice', roles: ['admin'] })}.`],
    ['an alg "none" token carrying a signature', async () => {
      const signature = (await sign({ sub: 'alice' })).split('.')[2];
      return `Bearer ${base64url({ alg: 'none', typ: 'JWT' })}.${base64url({ sub: 'alice', roles: ['admin'] })}.${signature}`;
    }],
    ['a token signed with HS512 (wrong algorithm, right secret)', async () => `Bearer ${await signWith({ sub: 'alice' }, 'HS512')}`],
    ['a token signed with HS384 (wrong algorithm, right secret)', async () => `Bearer ${await signWith({ sub: 'alice' }, 'HS384')}`],
    ['a token signed with RS256 (asymmetric algorithm)', async () => {
      const { privateKey } = await generateKeyPair('RS256');
      return `Bearer ${await signWith({ sub: 'alice' }, 'RS256', privateKey)}`;
    }],
    ['a token without a sub claim', async () => `Bearer ${await sign({ roles: ['admin'] })}`],
    ['a token whose sub is empty', async () => `Bearer ${await sign({ sub: '' })}`],
    ['a token whose sub is a number', async () => `Bearer ${await sign({ sub: 42 })}`],
    ['a token whose sub is longer than 200 characters', async () => `Bearer ${await sign({ sub: 'x'.repeat(201) })}`],
    ['a token whose sub contains a NUL character', async () => `Bearer ${await sign({ sub: 'ali\u0000ce' })}`],
    ['a token whose roles is a string', async () => `Bearer ${await sign({ sub: 'alice', roles: 'admin' })}`],
    ['a token whose roles holds a non-string', async () => `Bearer ${await sign({ sub: 'alice', roles: ['admin', 1] })}`],
    ['a token whose payload is a JSON string, not claims', async () =>
      `Bearer ${await new CompactSign(key(JSON.stringify('alice'))).setProtectedHeader({ alg: 'HS256' }).sign(key(secret))}`],
    ['two tokens', async () => `Bearer ${await sign({ sub: 'alice' })} ${await sign({ sub: 'bob' })}`],
  ];

  const protectedEndpoints: Array<[string, (client: request.Agent) => request.Test]> = [
    ['GET /api/v1/matches', (client) => client.get(`${API}/matches`)],
    ['GET /api/v1/matches/:id', (client) => client.get(`${API}/matches/${matchId}`)],
    ['POST /api/v1/matches', (client) => client.post(`${API}/matches`).send({ title: 'X', startsAt: '2026-12-01T18:30:00Z', capacity: 1 })],
    ['PATCH /api/v1/matches/:id', (client) => client.patch(`${API}/matches/${matchId}`).send({ capacity: 1 })],
    ['POST /api/v1/matches/:id/bookings', (client) => client.post(`${API}/matches/${matchId}/bookings`).send({ slots: 1 })],
    ['GET /api/v1/bookings', (client) => client.get(`${API}/bookings`)],
    ['GET /api/v1/bookings/:id', (client) => client.get(`${API}/bookings/${bookingId}`)],
    ['POST /api/v1/bookings/:id/cancel', (client) => client.post(`${API}/bookings/${bookingId}/cancel`)],
  ];

  describe.each(badAuthorizations)('with %s', (_case, authorization) => {
    it.each(protectedEndpoints)(
      'should answer %s with 401 problem+json, WWW-Authenticate: Bearer, and change nothing',
      async (_endpoint, send) => {
        const before = await databaseSnapshot(t);
        const header = await authorization();
        const pending = send(request.agent(t.server));

        const response = await (header === undefined ? pending : pending.set('Authorization', header));

        expect(expectProblem(response, 401)).toMatchObject({ type: 'about:blank', title: 'Unauthorized' });
        expect(response.headers['www-authenticate']).toBe('Bearer');
        expect(await databaseSnapshot(t)).toEqual(before);
      },
    );
  });

  it('should not reveal why a token failed beyond a generic reason (no secret, no library internals)', async () => {
    const response = await request(t.server)
      .get(`${API}/matches`)
      .set('Authorization', `Bearer ${await signWith({ sub: 'alice' }, 'HS256', key('another-secret-of-at-least-32-characters!!'))}`);

    expectProblem(response, 401);
    expect(response.text).not.toContain(secret);
    expect(response.text).not.toMatch(/JOSEError|JWSSignatureVerificationFailed|signature verification failed|at .*\.js/);
  });

  it("should take the customer id from the token's sub claim", async () => {
    const token = await sign({ sub: 'customer-from-sub', roles: [] });

    const response = await request(t.server)
      .post(`${API}/matches/${matchId}/bookings`)
      .set('Authorization', `Bearer ${token}`)
      .send({ slots: 1 });

    expect(response.status).toBe(201);
    expect(response.body.customerId).toBe('customer-from-sub');
  });

  it('should accept a valid token without any roles claim as a customer', async () => {
    const response = await request(t.server)
      .get(`${API}/bookings`)
      .set('Authorization', `Bearer ${await sign({ sub: 'no-roles' })}`);

    expect(response.status).toBe(200);
  });

  it('should accept the scheme name in any letter case ("bearer")', async () => {
    const response = await request(t.server)
      .get(`${API}/matches`)
      .set('Authorization', `bearer ${await sign({ sub: 'alice' })}`);

    expect(response.status).toBe(200);
  });

  it('should treat a token whose roles contain "admin" among others as an admin', async () => {
    const response = await request(t.server)
      .post(`${API}/matches`)
      .set('Authorization', `Bearer ${await sign({ sub: 'ops', roles: ['support', 'admin'] })}`)
      .send({ title: 'By ops', startsAt: '2026-12-01T18:30:00Z', capacity: 1 });

    expect(response.status).toBe(201);
  });

  it.each([
    ['no roles at all', {}],
    ['an empty roles array', { roles: [] }],
    ['"Admin" (roles are case-sensitive)', { roles: ['Admin'] }],
    ['"administrator"', { roles: ['administrator'] }],
    ['an "admin" claim outside roles', { admin: true, role: 'admin' }],
  ])('should answer 403 problem+json to admin-only routes for a token with %s', async (_case, claims) => {
    const token = await sign({ sub: 'not-admin', ...claims });
    const before = await databaseSnapshot(t);

    const created = await request(t.server)
      .post(`${API}/matches`)
      .set('Authorization', `Bearer ${token}`)
      .send({ title: 'Nope', startsAt: '2026-12-01T18:30:00Z', capacity: 1 });
    const patched = await request(t.server)
      .patch(`${API}/matches/${matchId}`)
      .set('Authorization', `Bearer ${token}`)
      .send({ capacity: 1 });

    expect(expectProblem(created, 403)).toMatchObject({ title: 'Forbidden' });
    expect(expectProblem(patched, 403)).toMatchObject({ title: 'Forbidden' });
    expect(await databaseSnapshot(t)).toEqual(before);
  });

  it('should check the token before anything else: 401 even for an unknown match', async () => {
    const response = await request(t.server).get(`${API}/matches/${UNKNOWN_ID}`);

    expectProblem(response, 401);
  });

  it('should answer an admin token on admin routes', async () => {
    const response = await request(t.server).get(`${API}/matches/${matchId}`).set('Authorization', adminAuth(t));

    expect(response.status).toBe(200);
  });

  it.each([
    ['GET /health/live', '/health/live'],
    ['GET /health/ready', '/health/ready'],
    ['GET /docs', '/docs'],
    ['GET /docs-json', '/docs-json'],
  ])('should answer %s without a token', async (_name, path) => {
    const response = await request(t.server).get(path);

    expect(response.status).toBe(200);
  });
});
