import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type CryptoKey, exportJWK, generateKeyPair, type JWK, type JWTPayload, SignJWT } from 'jose';

export const PROVIDER_AUDIENCE = 'booking-api';

interface SigningKey {
  kid: string;
  alg: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

/**
 * A real OpenID Connect identity provider as far as the service sees one: an HTTP server on
 * 127.0.0.1 serving an OpenID configuration document and a JWKS of keys made with jose, and
 * signing tokens with them. It counts the requests for each document.
 */
export class TestIdentityProvider {
  /** Requests for the key set and for the OpenID configuration. */
  jwksRequests = 0;
  discoveryRequests = 0;
  /** The issuer the OpenID configuration names, when a test makes it lie; else the real one. */
  advertisedIssuer: string | undefined;
  port = 0;
  private server: Server | undefined;
  private readonly published = new Map<string, SigningKey>();
  /** Keys that sign but are not (or no longer) published. */
  private readonly unpublished = new Map<string, SigningKey>();

  private constructor() {}

  static async start(): Promise<TestIdentityProvider> {
    const provider = new TestIdentityProvider();
    await provider.listen(0);
    return provider;
  }

  get issuer(): string {
    return `http://127.0.0.1:${this.port}/realms/booking`;
  }

  get jwksUrl(): string {
    return `${this.issuer}/protocol/openid-connect/certs`;
  }

  /** The service's configuration for this provider (the key set by URL; without it, discovered from the issuer). */
  env(overrides: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    return { AUTH_ISSUER: this.issuer, AUTH_JWKS_URL: this.jwksUrl, AUTH_AUDIENCE: PROVIDER_AUDIENCE, ...overrides };
  }

  /** Makes a key pair; published unless told otherwise. */
  async addKey(kid: string, alg: 'RS256' | 'PS256' | 'ES256' | 'EdDSA' = 'RS256', { publish = true } = {}): Promise<void> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const key = { kid, alg, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
    (publish ? this.published : this.unpublished).set(kid, key);
  }

  /** Stops publishing a key; it can still sign (as an attacker or a stale token would). */
  unpublish(kid: string): void {
    const key = this.published.get(kid);
    if (!key) throw new Error(`no published key ${kid}`);
    this.published.delete(kid);
    this.unpublished.set(kid, key);
  }

  publicJwk(kid: string): JWK {
    const key = this.published.get(kid) ?? this.unpublished.get(kid);
    if (!key) throw new Error(`no key ${kid}`);
    return key.publicJwk;
  }

  /**
   * A token signed with key `kid`: by default issued by this provider for PROVIDER_AUDIENCE,
   * valid for an hour; `claims` add to or replace these claims (undefined removes one).
   */
  async sign(kid: string, claims: JWTPayload & Record<string, unknown> = {}): Promise<string> {
    const key = this.published.get(kid) ?? this.unpublished.get(kid);
    if (!key) throw new Error(`no key ${kid}`);
    const now = Math.floor(Date.now() / 1000);
    const payload = Object.fromEntries(
      Object.entries({ iss: this.issuer, aud: PROVIDER_AUDIENCE, iat: now, exp: now + 3600, ...claims }).filter(([, value]) => value !== undefined),
    );
    return new SignJWT(payload).setProtectedHeader({ alg: key.alg, kid, typ: 'JWT' }).sign(key.privateKey);
  }

  /** Stops answering: connections are refused until restart(). */
  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    server.closeAllConnections();
    await new Promise<void>((resolve, reject) => server.close((error) => (error ? reject(error) : resolve())));
  }

  /** Answers again on the same port, with the same keys. */
  async restart(): Promise<void> {
    await this.listen(this.port);
  }

  private async listen(port: number): Promise<void> {
    const server = createServer((request, response) => {
      const path = new URL(request.url ?? '/', this.issuer).pathname;
      if (path === '/realms/booking/.well-known/openid-configuration') {
        this.discoveryRequests += 1;
        return this.json(response, { issuer: this.advertisedIssuer ?? this.issuer, jwks_uri: this.jwksUrl, id_token_signing_alg_values_supported: ['RS256', 'ES256'] });
      }
      if (path === '/realms/booking/protocol/openid-connect/certs') {
        this.jwksRequests += 1;
        return this.json(response, { keys: [...this.published.values()].map((key) => key.publicJwk) });
      }
      response.writeHead(404).end();
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    this.server = server;
    this.port = (server.address() as AddressInfo).port;
  }

  private json(response: ServerResponse, body: unknown): void {
    response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
  }
}
