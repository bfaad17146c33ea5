import request from 'supertest';
import { startTestApp, type TestApp } from '../support/test-app';
import { API } from './helpers';

/** What browsers are told: security headers on every answer, and CORS for the configured origins only. */

const ALLOWED = 'https://app.example.com';
const OTHER = 'https://evil.example.com';

describe('Browser security', () => {
  describe('with the default configuration (CORS off)', () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await startTestApp();
    });

    afterAll(async () => {
      await t.close();
    });

    it.each([
      ['an API answer', `${API}/matches`],
      ['a health check', '/health/live'],
      ['an unknown route', '/nowhere'],
      ['the API docs', '/docs'],
    ])('should send the security headers on %s', async (_case, path) => {
      const response = await request(t.server).get(path);

      expect(response.headers).toMatchObject({
        'content-security-policy': expect.stringContaining("default-src 'self'"),
        'strict-transport-security': expect.stringMatching(/^max-age=\d+/),
        'x-content-type-options': 'nosniff',
        'x-frame-options': 'SAMEORIGIN',
        'referrer-policy': 'no-referrer',
        'cross-origin-opener-policy': 'same-origin',
        'cross-origin-resource-policy': 'same-origin',
      });
      expect(response.headers['content-security-policy']).not.toContain('upgrade-insecure-requests');
      expect(response.headers['x-powered-by']).toBeUndefined();
    });

    it('should let the Swagger UI load its own scripts and styles under that policy', async () => {
      const page = await request(t.server).get('/docs').expect(200);
      const policy = page.headers['content-security-policy'];

      expect(policy).toContain("script-src 'self'");
      expect(policy).toContain("style-src 'self' https: 'unsafe-inline'");
      // Every script of the page is a file of its own origin, which script-src 'self' allows.
      expect(page.text).not.toMatch(/<script>(?!\s*<\/script>)/);
      const scripts = [...page.text.matchAll(/<script src="([^"]+)"/g)].map((match) => match[1]);
      expect(scripts.length).toBeGreaterThan(0);
      for (const script of scripts) {
        expect(script).not.toMatch(/^https?:/);
        // Resolved against the page address, as a browser does.
        await request(t.server).get(new URL(script!, 'http://localhost/docs').pathname).expect(200);
      }
    });

    it('should send no CORS header to any origin, and answer no preflight', async () => {
      const simple = await request(t.server).get('/health/live').set('Origin', ALLOWED);
      const preflight = await request(t.server)
        .options(`${API}/bookings`)
        .set('Origin', ALLOWED)
        .set('Access-Control-Request-Method', 'POST');

      expect(simple.headers['access-control-allow-origin']).toBeUndefined();
      expect(preflight.status).toBe(404);
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      expect(preflight.headers['access-control-allow-methods']).toBeUndefined();
    });
  });

  describe('with CORS_ORIGINS', () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await startTestApp({ CORS_ORIGINS: `${ALLOWED}, http://localhost:5173` });
    });

    afterAll(async () => {
      await t.close();
    });

    it('should answer the preflight of an allowed origin, allowing Authorization and Idempotency-Key', async () => {
      const response = await request(t.server)
        .options(`${API}/matches/some-id/bookings`)
        .set('Origin', ALLOWED)
        .set('Access-Control-Request-Method', 'POST')
        .set('Access-Control-Request-Headers', 'authorization, content-type, idempotency-key');

      expect(response.status).toBe(204);
      expect(response.headers['access-control-allow-origin']).toBe(ALLOWED);
      expect(response.headers['access-control-allow-methods']).toContain('POST');
      const allowedHeaders = response.headers['access-control-allow-headers']?.toLowerCase().split(',');
      expect(allowedHeaders).toEqual(expect.arrayContaining(['authorization', 'content-type', 'idempotency-key']));
      expect(response.headers['access-control-allow-credentials']).toBeUndefined();
      expect(response.headers['access-control-max-age']).toBe('600');
    });

    it('should let an allowed origin read the answer and the headers clients need, errors included', async () => {
      const ok = await request(t.server).get(`${API}/bookings`).set('Origin', 'http://localhost:5173').set('Authorization', `Bearer ${t.token('alice')}`);
      const refused = await request(t.server).get(`${API}/bookings`).set('Origin', ALLOWED);

      expect(ok.status).toBe(200);
      expect(ok.headers['access-control-allow-origin']).toBe('http://localhost:5173');
      expect(ok.headers.vary).toMatch(/Origin/);
      expect(ok.headers['access-control-expose-headers']?.split(',')).toEqual(
        expect.arrayContaining(['Retry-After', 'X-Request-Id', 'Idempotent-Replayed', 'WWW-Authenticate']),
      );
      expect(refused.status).toBe(401);
      expect(refused.headers['access-control-allow-origin']).toBe(ALLOWED);
    });

    it.each([
      ['another origin', OTHER],
      ['an allowed origin with another port', 'https://app.example.com:8443'],
      ['an allowed origin over http', 'http://app.example.com'],
      ['the string "null"', 'null'],
    ])('should give %s no CORS header, and not answer its preflight', async (_case, origin) => {
      const simple = await request(t.server).get(`${API}/bookings`).set('Origin', origin).set('Authorization', `Bearer ${t.token('alice')}`);
      const preflight = await request(t.server)
        .options(`${API}/bookings`)
        .set('Origin', origin)
        .set('Access-Control-Request-Method', 'GET')
        .set('Access-Control-Request-Headers', 'authorization');

      expect(simple.status).toBe(200);
      expect(simple.headers['access-control-allow-origin']).toBeUndefined();
      expect(preflight.status).toBe(404);
      expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
      expect(preflight.headers['access-control-allow-headers']).toBeUndefined();
    });
  });
});
