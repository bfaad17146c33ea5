import { createHmac } from 'node:crypto';
import { generateKeyPair, SignJWT } from 'jose';
import request from 'supertest';
import { DEVELOPMENT_JWT_SECRET } from '../../src/config/app-config';
import { IDENTITY_PROVIDER } from '../../src/auth/authenticator';
import type { IdentityProvider } from '../../src/auth/identity-provider';
import { signAccessToken } from '../../src/auth/jwt';
import { PROVIDER_AUDIENCE, TestIdentityProvider } from '../support/identity-provider';
import { startTestApp, type TestApp } from '../support/test-app';
import { API, expectProblem } from './helpers';

/** Tokens of an OpenID Connect identity provider, checked against its JWKS served by a real HTTP server. */

const nowSeconds = (): number => Math.floor(Date.now() / 1000);
const base64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

const listBookings = (t: TestApp, token: string) => request(t.server).get(`${API}/bookings`).set('Authorization', `Bearer ${token}`);
const ready = (t: TestApp) => request(t.server).get('/health/ready');

interface ReadyBody {
  status: string;
  details: Record<string, { status: string; message?: string }>;
}

async function pollReady(t: TestApp, predicate: (body: ReadyBody) => boolean): Promise<request.Response> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const response = await ready(t);
    if (predicate(response.body as ReadyBody)) return response;
    if (Date.now() > deadline) throw new Error(`readiness never matched; last answer: ${response.text}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/** Expects 401 problem+json whose detail gives this reason. */
function expectRefused(response: request.Response, reason: string | RegExp): void {
  const body = expectProblem(response, 401);
  expect(body).toMatchObject({ type: 'about:blank', title: 'Unauthorized' });
  expect(body.detail).toMatch(reason);
  expect(response.headers['www-authenticate']).toBe('Bearer');
}

describe('Identity provider tokens', () => {
  describe('with the key set configured by URL and Keycloak-style roles', () => {
    let provider: TestIdentityProvider;
    let t: TestApp;

    beforeAll(async () => {
      provider = await TestIdentityProvider.start();
      await provider.addKey('rsa-1', 'RS256');
      await provider.addKey('ec-1', 'ES256');
      await provider.addKey('not-published', 'RS256', { publish: false });
      t = await startTestApp(provider.env({ AUTH_ROLES_CLAIM: 'realm_access.roles', AUTH_JWKS_COOLDOWN_MS: '0' }));
    });

    afterAll(async () => {
      await t.close();
      await provider.stop();
    });

    it('should accept an RS256 and an ES256 token of the provider', async () => {
      expect((await listBookings(t, await provider.sign('rsa-1', { sub: 'alice' }))).status).toBe(200);
      expect((await listBookings(t, await provider.sign('ec-1', { sub: 'alice' }))).status).toBe(200);
    });

    it('should let an admin (realm_access.roles) create a match and a customer book it under its sub', async () => {
      const admin = await provider.sign('rsa-1', { sub: 'ops', realm_access: { roles: ['offline_access', 'admin'] } });
      const customer = await provider.sign('ec-1', { sub: 'customer-42', realm_access: { roles: ['offline_access'] } });

      const match = await request(t.server)
        .post(`${API}/matches`)
        .set('Authorization', `Bearer ${admin}`)
        .send({ title: 'Keycloak cup', startsAt: '2026-12-01T18:30:00Z', capacity: 5 })
        .expect(201);
      const refused = await request(t.server)
        .post(`${API}/matches`)
        .set('Authorization', `Bearer ${customer}`)
        .send({ title: 'Not an admin', startsAt: '2026-12-01T18:30:00Z', capacity: 5 });
      const booking = await request(t.server)
        .post(`${API}/matches/${match.body.id}/bookings`)
        .set('Authorization', `Bearer ${customer}`)
        .send({ slots: 2 })
        .expect(201);

      expectProblem(refused, 403);
      expect(booking.body).toMatchObject({ customerId: 'customer-42', slots: 2 });
    });

    it('should verify the token of a write once, for the rate limiter and the handler alike', async () => {
      const admin = await provider.sign('rsa-1', { sub: 'ops', realm_access: { roles: ['admin'] } });
      const verify = jest.spyOn(t.app.get<IdentityProvider>(IDENTITY_PROVIDER), 'verify');
      try {
        await request(t.server)
          .post(`${API}/matches`)
          .set('Authorization', `Bearer ${admin}`)
          .send({ title: 'Verified once', startsAt: '2026-12-01T18:30:00Z', capacity: 5 })
          .expect(201);

        expect(verify).toHaveBeenCalledTimes(1);
      } finally {
        verify.mockRestore();
      }
    });

    it('should report the provider ready with its keys', async () => {
      const response = await ready(t).expect(200);

      expect(response.body).toMatchObject({ status: 'ok', details: { identityProvider: { status: 'up', keys: 2 } } });
    });

    const refusals: Array<[string, () => Promise<string>, string | RegExp]> = [
      ['another issuer', () => provider.sign('rsa-1', { sub: 'alice', iss: 'https://evil.example.com/realms/booking' }), 'the token was issued by another issuer'],
      ['no issuer', () => provider.sign('rsa-1', { sub: 'alice', iss: undefined }), 'the token has no "iss" claim'],
      ['another audience', () => provider.sign('rsa-1', { sub: 'alice', aud: 'another-api' }), 'the token is meant for another audience'],
      ['no audience', () => provider.sign('rsa-1', { sub: 'alice', aud: undefined }), 'the token has no "aud" claim'],
      ['an expiry past the clock tolerance', () => provider.sign('rsa-1', { sub: 'alice', exp: nowSeconds() - 60 }), 'the token has expired'],
      ['a not-before in the future', () => provider.sign('rsa-1', { sub: 'alice', nbf: nowSeconds() + 600 }), 'the token is not valid yet'],
      ['no customer claim', () => provider.sign('rsa-1', { realm_access: { roles: ['admin'] } }), 'the token has no "sub" claim'],
      ['a customer claim with NUL', () => provider.sign('rsa-1', { sub: 'ali\u0000ce' }), 'must not contain the NUL character'],
      ['a key id the provider does not publish', () => provider.sign('not-published', { sub: 'alice' }), "no key of the identity provider matches the token's key id"],
      [
        'a published key id but another key',
        async () => {
          const { privateKey } = await generateKeyPair('RS256');
          return new SignJWT({ sub: 'alice', iss: provider.issuer, aud: PROVIDER_AUDIENCE, exp: nowSeconds() + 60 })
            .setProtectedHeader({ alg: 'RS256', kid: 'rsa-1' })
            .sign(privateKey);
        },
        'the signature does not verify',
      ],
      ['alg "none"', () => Promise.resolve(`${base64url({ alg: 'none', kid: 'rsa-1' })}.${base64url({ sub: 'alice', iss: provider.issuer, aud: PROVIDER_AUDIENCE })}.`), 'the algorithm "none" is not accepted'],
      [
        'HS256 with the development secret (no AUTH_JWT_SECRET beside the provider)',
        () => Promise.resolve(signAccessToken({ sub: 'alice', admin: true }, DEVELOPMENT_JWT_SECRET, 60)),
        'the algorithm "HS256" is not accepted',
      ],
      [
        "HS256 with the provider's public key as the HMAC secret (algorithm confusion)",
        () => {
          const signingInput = `${base64url({ alg: 'HS256', kid: 'rsa-1' })}.${base64url({ sub: 'alice', iss: provider.issuer, aud: PROVIDER_AUDIENCE, exp: nowSeconds() + 60 })}`;
          const secret = JSON.stringify(provider.publicJwk('rsa-1'));
          return Promise.resolve(`${signingInput}.${createHmac('sha256', secret).update(signingInput).digest('base64url')}`);
        },
        'the algorithm "HS256" is not accepted',
      ],
      [
        'RS384, an algorithm outside AUTH_ALGORITHMS',
        async () => {
          const { privateKey } = await generateKeyPair('RS384');
          return new SignJWT({ sub: 'alice', iss: provider.issuer, aud: PROVIDER_AUDIENCE, exp: nowSeconds() + 60 })
            .setProtectedHeader({ alg: 'RS384', kid: 'rsa-1' })
            .sign(privateKey);
        },
        'the algorithm "RS384" is not accepted',
      ],
    ];

    it.each(refusals)('should answer 401 problem+json to a token with %s, saying why', async (_case, token, reason) => {
      expectRefused(await listBookings(t, await token()), reason);
    });

    it('should fetch the key set again for an unknown key id before refusing it', async () => {
      const before = provider.jwksRequests;

      expectRefused(await listBookings(t, await provider.sign('not-published', { sub: 'alice' })), /no key of the identity provider matches/);
      expect(provider.jwksRequests).toBe(before + 1);
    });

    it('should not leak the key set, the token or library wording in the detail', async () => {
      const response = await listBookings(t, await provider.sign('rsa-1', { sub: 'alice', aud: 'another-api' }));

      expectRefused(response, /another audience/);
      expect(response.text).not.toMatch(/JWTClaimValidationFailed|unexpected "aud" claim value|another-api|"n":/);
    });
  });

  describe('key rotation', () => {
    let provider: TestIdentityProvider;
    let t: TestApp;

    beforeAll(async () => {
      provider = await TestIdentityProvider.start();
      await provider.addKey('2025-key', 'RS256');
      t = await startTestApp(provider.env({ AUTH_JWKS_COOLDOWN_MS: '0' }));
    });

    afterAll(async () => {
      await t.close();
      await provider.stop();
    });

    it('should accept a token of a newly published key without a restart, and refuse the removed key after the refetch', async () => {
      const oldToken = await provider.sign('2025-key', { sub: 'alice' });
      await listBookings(t, oldToken).expect(200);

      await provider.addKey('2026-key', 'ES256');
      provider.unpublish('2025-key');
      const fetchesBefore = provider.jwksRequests;

      await listBookings(t, await provider.sign('2026-key', { sub: 'alice' })).expect(200);
      expect(provider.jwksRequests).toBe(fetchesBefore + 1);
      // The cached key set no longer has the old key: no fetch can bring it back, so the token is refused.
      expectRefused(await listBookings(t, oldToken), "no key of the identity provider matches the token's key id");
      expect(provider.jwksRequests).toBe(fetchesBefore + 2);
    });

    it('should verify a token again only after its expiry or a change of the key set', async () => {
      const verify = jest.spyOn(t.app.get<IdentityProvider>(IDENTITY_PROVIDER), 'verify');
      try {
        await provider.addKey('2027-key', 'RS256');
        const token = await provider.sign('2027-key', { sub: 'repeat' });
        await listBookings(t, token).expect(200);
        await listBookings(t, token).expect(200);
        expect(verify).toHaveBeenCalledTimes(1);

        await provider.addKey('2028-key', 'RS256');
        await listBookings(t, await provider.sign('2028-key', { sub: 'repeat' })).expect(200);
        await listBookings(t, token).expect(200);
        expect(verify).toHaveBeenCalledTimes(3);

        // Past its exp, the token is verified again (and jose decides, with AUTH_CLOCK_TOLERANCE_S).
        const shortLived = await provider.sign('2027-key', { sub: 'repeat', exp: nowSeconds() + 1 });
        await listBookings(t, shortLived).expect(200);
        await listBookings(t, shortLived).expect(200);
        expect(verify).toHaveBeenCalledTimes(4);
        await new Promise((resolve) => setTimeout(resolve, 2_100));
        await listBookings(t, shortLived).expect(200);
        expect(verify).toHaveBeenCalledTimes(5);
      } finally {
        verify.mockRestore();
      }
    });
  });

  describe('when the provider goes down', () => {
    let provider: TestIdentityProvider;
    let t: TestApp;

    beforeAll(async () => {
      provider = await TestIdentityProvider.start();
      await provider.addKey('k1', 'RS256');
      // Keys count as old after a second, so the outage is noticed by a background refresh.
      t = await startTestApp(provider.env({ AUTH_JWKS_MAX_AGE_MS: '1000', AUTH_JWKS_COOLDOWN_MS: '200', AUTH_JWKS_TIMEOUT_MS: '500' }));
    });

    afterAll(async () => {
      await t.close();
      await provider.stop();
    });

    it('should keep accepting tokens whose keys are cached, and stay ready while reporting the provider degraded', async () => {
      const token = await provider.sign('k1', { sub: 'alice' });
      await listBookings(t, token).expect(200);

      await provider.stop();
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      const degraded = await pollReady(t, (body) => body.details.identityProvider?.status === 'degraded');

      expect(degraded.status).toBe(200);
      expect(degraded.body).toMatchObject({ status: 'degraded', details: { database: { status: 'up' }, identityProvider: { status: 'degraded', keys: 1 } } });
      expect(degraded.body.details.identityProvider.message).toMatch(/^serving cached keys; the last fetch failed: /);
      await listBookings(t, token).expect(200);
      await listBookings(t, await provider.sign('k1', { sub: 'bob' })).expect(200);
    });

    it('should answer 503 (retry), not 401, to a token whose key is not cached while the key set cannot be fetched', async () => {
      await provider.addKey('k2', 'ES256');

      const response = await listBookings(t, await provider.sign('k2', { sub: 'alice' }));

      expect(expectProblem(response, 503)).toMatchObject({ type: '/problems/identity-provider-unavailable', retryAfterSeconds: 5 });
      expect(response.headers['retry-after']).toBe('5');
    });

    it('should report the provider up again once it answers, without a restart', async () => {
      await provider.restart();

      await pollReady(t, (body) => body.status === 'ok' && body.details.identityProvider?.status === 'up');
      await listBookings(t, await provider.sign('k2', { sub: 'alice' })).expect(200);
    });
  });

  describe('before any key was fetched', () => {
    let provider: TestIdentityProvider;
    let t: TestApp;

    beforeAll(async () => {
      provider = await TestIdentityProvider.start();
      await provider.addKey('k1', 'RS256');
      await provider.stop();
      t = await startTestApp(provider.env({ AUTH_JWKS_COOLDOWN_MS: '200', AUTH_JWKS_TIMEOUT_MS: '500' }));
    });

    afterAll(async () => {
      await t.close();
      await provider.stop();
    });

    it('should not be ready, and answer 503 to its tokens, until the provider answers', async () => {
      const notReady = await pollReady(t, (body) => body.details.identityProvider?.message?.includes('the last fetch failed') ?? false);
      expect(notReady.status).toBe(503);
      expect(notReady.body).toMatchObject({ type: '/problems/not-ready', details: { identityProvider: { status: 'down' } } });
      expect(notReady.body.details.identityProvider.message).toMatch(/^no signing key fetched yet; the last fetch failed: /);
      expectProblem(await listBookings(t, await provider.sign('k1', { sub: 'alice' })), 503);

      await provider.restart();

      await pollReady(t, (body) => body.status === 'ok');
      await listBookings(t, await provider.sign('k1', { sub: 'alice' })).expect(200);
    });
  });

  describe('with the key set discovered from the issuer and an Auth0-style namespaced roles claim', () => {
    let provider: TestIdentityProvider;
    let t: TestApp;

    beforeAll(async () => {
      provider = await TestIdentityProvider.start();
      await provider.addKey('k1', 'ES256');
      t = await startTestApp(provider.env({ AUTH_JWKS_URL: undefined, AUTH_ROLES_CLAIM: 'https://booking.example.com/roles' }));
    });

    afterAll(async () => {
      await t.close();
      await provider.stop();
    });

    it('should find jwks_uri in the OpenID configuration, once, and read the roles claim whose name contains dots', async () => {
      const admin = await provider.sign('k1', { sub: 'ops', 'https://booking.example.com/roles': ['admin'] });

      await request(t.server)
        .post(`${API}/matches`)
        .set('Authorization', `Bearer ${admin}`)
        .send({ title: 'Discovered', startsAt: '2026-12-01T18:30:00Z', capacity: 5 })
        .expect(201);
      await listBookings(t, await provider.sign('k1', { sub: 'alice' })).expect(200);

      expect(provider.discoveryRequests).toBe(1);
      expect(provider.jwksRequests).toBe(1);
    });
  });

  describe('with an OpenID configuration that names another issuer', () => {
    let provider: TestIdentityProvider;
    let t: TestApp;

    beforeAll(async () => {
      provider = await TestIdentityProvider.start();
      await provider.addKey('k1', 'RS256');
      provider.advertisedIssuer = 'https://impostor.example.com/realms/booking';
      t = await startTestApp(provider.env({ AUTH_JWKS_URL: undefined }));
    });

    afterAll(async () => {
      await t.close();
      await provider.stop();
    });

    it('should use none of its keys and not be ready', async () => {
      const response = await pollReady(t, (body) => body.details.identityProvider?.message?.includes('names the issuer') ?? false);

      expect(response.status).toBe(503);
      expect(provider.jwksRequests).toBe(0);
      expectProblem(await listBookings(t, await provider.sign('k1', { sub: 'alice' })), 503);
    });
  });

  describe('the refetch cooldown', () => {
    let provider: TestIdentityProvider;
    let t: TestApp;

    beforeAll(async () => {
      provider = await TestIdentityProvider.start();
      await provider.addKey('k1', 'RS256');
      t = await startTestApp(provider.env({ AUTH_JWKS_COOLDOWN_MS: '60000' }));
      await pollReady(t, (body) => body.status === 'ok');
    });

    afterAll(async () => {
      await t.close();
      await provider.stop();
    });

    it('should fetch the key set at most once for a flood of tokens with made-up key ids', async () => {
      const before = provider.jwksRequests;

      const responses = await Promise.all(
        Array.from({ length: 40 }, async (_, index) => {
          const { privateKey } = await generateKeyPair('ES256');
          const token = await new SignJWT({ sub: 'alice', iss: provider.issuer, aud: PROVIDER_AUDIENCE, exp: nowSeconds() + 60 })
            .setProtectedHeader({ alg: 'ES256', kid: `made-up-${index}` })
            .sign(privateKey);
          return listBookings(t, token);
        }),
      );

      for (const response of responses) expectRefused(response, "no key of the identity provider matches the token's key id");
      expect(provider.jwksRequests - before).toBeLessThanOrEqual(1);
      await listBookings(t, await provider.sign('k1', { sub: 'alice' })).expect(200);
    });
  });

  describe('with an HS256 secret beside the provider', () => {
    let provider: TestIdentityProvider;
    let t: TestApp;
    const secret = 'a-service-secret-of-at-least-32-characters';

    beforeAll(async () => {
      provider = await TestIdentityProvider.start();
      await provider.addKey('k1', 'RS256');
      t = await startTestApp(provider.env({ AUTH_JWT_SECRET: secret }));
    });

    afterAll(async () => {
      await t.close();
      await provider.stop();
    });

    it("should verify each token by the method its header names: HS256 with the secret, RS256 with the provider's keys", async () => {
      await listBookings(t, signAccessToken({ sub: 'alice', admin: false }, secret, 60)).expect(200);
      await listBookings(t, await provider.sign('k1', { sub: 'alice' })).expect(200);
      expectRefused(await listBookings(t, signAccessToken({ sub: 'alice', admin: false }, DEVELOPMENT_JWT_SECRET, 60)), 'the signature does not verify');
    });
  });
});
