import { Logger } from '@nestjs/common';
import {
  createLocalJWKSet,
  type CryptoKey,
  errors,
  type FlattenedJWSInput,
  type JSONWebKeySet,
  type JWSHeaderParameters,
  jwtVerify,
  type JWTPayload,
} from 'jose';
import type { IdentityProviderConfig } from '../config/app-config';
import { describeError } from '../errors/describe-error';
import { IdentityProviderUnavailableError } from './auth-errors';

type KeyResolver = ReturnType<typeof createLocalJWKSet>;

/** What readiness reports about the provider's keys. */
export type ProviderKeysState =
  /** The last fetch succeeded. */
  | { state: 'current'; keys: number; fetchedAt: string }
  /** The last fetch failed; the keys of an earlier one still serve. */
  | { state: 'stale'; keys: number; fetchedAt: string; lastError: string }
  /** No fetch has succeeded yet: no token of the provider can be verified. */
  | { state: 'missing'; lastError: string | undefined };

/**
 * The identity provider of AUTH_ISSUER: verifies its tokens against its published keys (JWKS).
 *
 * The keys are cached. A token naming an unknown key id fetches them again (the provider may
 * have rotated its keys), but at most once per AUTH_JWKS_COOLDOWN_MS, counted from the last
 * attempt whether it succeeded or not, so a flood of made-up key ids cannot hammer the
 * provider. Keys older than AUTH_JWKS_MAX_AGE_MS are refreshed in the background; a failed
 * refresh keeps the cached keys serving, so a provider outage rejects no token whose key is
 * cached. jose's createRemoteJWKSet does not fit: it rejects every token once its cache is older
 * than cacheMaxAge and the refetch fails, and its cooldown starts only after a successful fetch.
 */
export class IdentityProvider {
  private readonly logger = new Logger('IdentityProvider');
  private resolver: KeyResolver | undefined;
  private keyCount = 0;
  /** The fetched key set as JSON, to tell a changed set from the same one fetched again. */
  private keySetJson = '';
  /** Counts the changes of the key set: a token verified with an older set must be verified again. */
  private keySetVersion = 0;
  private readonly resolverVersions = new WeakMap<KeyResolver, number>();
  private fetchedAt = 0;
  private lastAttemptAt = Number.NEGATIVE_INFINITY;
  /** Why the latest fetch failed; undefined after a successful one. */
  private lastError: string | undefined;
  private inFlight: Promise<KeyResolver> | undefined;
  /** AUTH_JWKS_URL, or the jwks_uri of the issuer's OpenID configuration once discovered. */
  private jwksUrl: URL | undefined;

  constructor(private readonly config: IdentityProviderConfig, private readonly clockToleranceS: number) {
    this.jwksUrl = config.jwksUrl === undefined ? undefined : new URL(config.jwksUrl);
  }

  /** Changes whenever a fetch brings a different key set (a key published or removed). */
  get keysVersion(): number {
    return this.keySetVersion;
  }

  /** Whether tokens signed with this algorithm are the provider's to verify (AUTH_ALGORITHMS). */
  signsWith(algorithm: string): boolean {
    return this.config.algorithms.includes(algorithm);
  }

  /**
   * The token's claims once its signature, issuer, audience, expiry and not-before check out,
   * with the version of the key set that verified it; throws jose's errors otherwise.
   */
  async verify(token: string): Promise<{ claims: JWTPayload; keysVersion: number }> {
    let keysVersion = this.keySetVersion;
    const key = async (header: JWSHeaderParameters, input: FlattenedJWSInput): Promise<CryptoKey> => {
      const found = await this.keyFor(header, input);
      keysVersion = found.keysVersion;
      return found.key;
    };
    const { payload } = await jwtVerify(token, key, {
      algorithms: this.config.algorithms,
      issuer: this.config.issuer,
      audience: this.config.audiences,
      clockTolerance: this.clockToleranceS,
    });
    return { claims: payload, keysVersion };
  }

  keysState(): ProviderKeysState {
    this.refreshWhenDue();
    if (this.resolver === undefined) return { state: 'missing', lastError: this.lastError };
    const fetchedAt = new Date(this.fetchedAt).toISOString();
    return this.lastError === undefined
      ? { state: 'current', keys: this.keyCount, fetchedAt }
      : { state: 'stale', keys: this.keyCount, fetchedAt, lastError: this.lastError };
  }

  /** Fetches the keys in the background when none are cached or they are old, unless a fetch is running or cooling down. */
  refreshWhenDue(): void {
    const due = this.resolver === undefined || Date.now() - this.fetchedAt >= this.config.jwksMaxAgeMs;
    if (!due || this.inFlight !== undefined || this.coolingDown()) return;
    // fetchKeys has logged the failure; the cached keys (if any) keep serving meanwhile.
    this.refresh().catch(() => undefined);
  }

  /** The cached key the token's header names, fetching the keys again for an unknown one; with the version of the key set it came from. */
  private async keyFor(header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<{ key: CryptoKey; keysVersion: number }> {
    const resolver = this.resolver ?? (await this.firstKeys());
    this.refreshWhenDue();
    try {
      return { key: await resolver(header, token), keysVersion: this.versionOf(resolver) };
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      // An unknown key id: the provider may have published a new key since the last fetch.
      const fresh = await this.keysAfterUnknownKey(error);
      return { key: await fresh(header, token), keysVersion: this.versionOf(fresh) };
    }
  }

  private versionOf(resolver: KeyResolver): number {
    return this.resolverVersions.get(resolver) ?? 0;
  }

  private async firstKeys(): Promise<KeyResolver> {
    if (this.inFlight === undefined && this.coolingDown()) {
      throw new IdentityProviderUnavailableError(`no key fetched yet; the last attempt failed: ${this.lastError ?? 'unknown'}`);
    }
    return this.refresh();
  }

  private async keysAfterUnknownKey(unknownKey: errors.JWKSNoMatchingKey): Promise<KeyResolver> {
    if (this.inFlight === undefined && this.coolingDown()) {
      // Fetched moments ago: a key the provider published then would be there. After a failed
      // fetch, though, the key may well exist: the token is not known to be bad.
      if (this.lastError !== undefined) throw new IdentityProviderUnavailableError(`unknown key id, and the last fetch failed: ${this.lastError}`);
      throw unknownKey;
    }
    return this.refresh();
  }

  private coolingDown(): boolean {
    return Date.now() - this.lastAttemptAt < this.config.jwksCooldownMs;
  }

  /** One fetch at a time: concurrent callers share it. */
  private refresh(): Promise<KeyResolver> {
    this.inFlight ??= this.fetchKeys().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async fetchKeys(): Promise<KeyResolver> {
    this.lastAttemptAt = Date.now();
    try {
      this.jwksUrl ??= await this.discoverJwksUrl();
      const jwks = await this.fetchJson(this.jwksUrl);
      const resolver = createLocalJWKSet(jwks as JSONWebKeySet);
      this.resolver = resolver;
      const keySetJson = JSON.stringify((jwks as JSONWebKeySet).keys);
      if (keySetJson !== this.keySetJson) {
        this.keySetJson = keySetJson;
        this.keySetVersion += 1;
      }
      this.resolverVersions.set(resolver, this.keySetVersion);
      this.keyCount = (jwks as JSONWebKeySet).keys.length;
      this.fetchedAt = Date.now();
      if (this.lastError !== undefined) this.logger.log(`Fetched the identity provider's keys again (${this.keyCount} keys)`);
      this.lastError = undefined;
      return resolver;
    } catch (error) {
      const reason = describeFetchError(error);
      // Logged when an outage starts, not on every failed attempt during it.
      if (this.lastError === undefined) {
        const consequence = this.resolver === undefined ? 'its tokens are refused until a fetch succeeds' : 'the cached keys keep serving';
        this.logger.warn(`Could not fetch the identity provider's keys from ${this.jwksUrl?.href ?? this.discoveryUrl().href}: ${reason}; ${consequence}`);
      }
      this.lastError = reason;
      throw new IdentityProviderUnavailableError(reason, { cause: error });
    }
  }

  /** OpenID Connect Discovery: the issuer without its trailing slash, then /.well-known/openid-configuration. */
  private discoveryUrl(): URL {
    return new URL(`${this.config.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`);
  }

  private async discoverJwksUrl(): Promise<URL> {
    const document = (await this.fetchJson(this.discoveryUrl())) as { issuer?: unknown; jwks_uri?: unknown };
    // The document must be the issuer's own (OpenID Connect Discovery 1.0, section 4.3).
    if (document.issuer !== this.config.issuer) {
      throw new Error(`the OpenID configuration names the issuer ${JSON.stringify(document.issuer)}, not AUTH_ISSUER`);
    }
    const jwksUrl = typeof document.jwks_uri === 'string' ? URL.parse(document.jwks_uri) : null;
    if (jwksUrl === null || !['http:', 'https:'].includes(jwksUrl.protocol)) {
      throw new Error('the OpenID configuration has no http(s) jwks_uri');
    }
    return jwksUrl;
  }

  private async fetchJson(url: URL): Promise<unknown> {
    const response = await fetch(url, {
      headers: { accept: 'application/json, application/jwk-set+json' },
      // A redirect is not followed: the keys come from the configured or discovered address only.
      redirect: 'manual',
      signal: AbortSignal.timeout(this.config.jwksTimeoutMs),
    });
    if (response.status !== 200) throw new Error(`${url.href} answered HTTP ${response.status}`);
    return response.json();
  }
}

/** fetch() reports a refused connection as "fetch failed", with the reason in its cause. */
function describeFetchError(error: unknown): string {
  const cause = error instanceof Error && error.cause instanceof Error ? ` (${error.cause.message})` : '';
  return `${describeError(error)}${cause}`;
}
