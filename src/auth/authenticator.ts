import { Inject, Injectable, type OnApplicationBootstrap } from '@nestjs/common';
import { createSecretKey, type KeyObject } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { decodeProtectedHeader, errors, jwtVerify, type JWTPayload } from 'jose';
import { APP_CONFIG, type AppConfig } from '../config/app-config';
import { IdentityProviderUnavailableError, InvalidTokenError, refusedToken } from './auth-errors';
import { type Caller, callerFromClaims, type ClaimNames } from './caller';
import { IdentityProvider } from './identity-provider';

/** A request as the guards see it (Fastify's): its token is in its headers. */
export interface HeldRequest {
  headers: IncomingHttpHeaders;
}

/** Most verified tokens remembered; past it, the oldest are forgotten (and verified again when they come back). */
const MAX_VERIFIED_TOKENS = 10_000;

/** A token that verified, with the caller it names, until it expires. */
interface VerifiedToken {
  caller: Caller;
  expiresAtMs: number;
  /** The identity provider's key set version it verified with; null for an HS256 token. */
  keysVersion: number | null;
}

/** Injection token of the configured IdentityProvider, or null without AUTH_ISSUER. */
export const IDENTITY_PROVIDER = Symbol('IDENTITY_PROVIDER');

/** The token of an "Authorization: Bearer <token>" header, if the header has that form. */
export function readBearerToken(header: string | undefined): string | undefined {
  const match = header === undefined ? null : /^Bearer ([^\s]+)$/i.exec(header.trim());
  return match?.[1];
}

/**
 * Reads the caller from a request's bearer token. Each token is verified by the one method its
 * header's `alg` names, and only if the configuration allows it: HS256 with AUTH_JWT_SECRET,
 * AUTH_ALGORITHMS with the identity provider's keys. Any other algorithm ("none" included) is
 * refused before any key is looked at, so no key can be used with an algorithm not meant for it.
 *
 * A request's token is verified once: the rate limiter and AuthGuard both ask, and share the answer.
 * A token that verified is remembered until its `exp` (a client sends the same token with every
 * request until it expires): the same string carries the same signature, so checking it again
 * would decide the same, unless the provider's key set changed since, which forgets it. Tokens
 * without `exp` are verified every time.
 */
@Injectable()
export class Authenticator implements OnApplicationBootstrap {
  private readonly secret: KeyObject | undefined;
  private readonly claimNames: ClaimNames;
  private readonly clockToleranceS: number;
  private readonly callers = new WeakMap<HeldRequest, Promise<Caller>>();
  private readonly verifiedTokens = new Map<string, VerifiedToken>();

  constructor(
    @Inject(APP_CONFIG) config: Pick<AppConfig, 'auth'>,
    @Inject(IDENTITY_PROVIDER) private readonly identityProvider: IdentityProvider | null,
  ) {
    const { jwtSecret, customerClaim, rolesClaim, adminRole, clockToleranceS } = config.auth;
    this.secret = jwtSecret === undefined ? undefined : createSecretKey(Buffer.from(jwtSecret, 'utf8'));
    this.claimNames = { customerClaim, rolesClaim, adminRole };
    this.clockToleranceS = clockToleranceS;
  }

  /** Fetches the provider's keys at startup, so that neither the first requests nor readiness wait for them. */
  onApplicationBootstrap(): void {
    this.identityProvider?.refreshWhenDue();
  }

  /** The request's caller; rejects with InvalidTokenError (401) or IdentityProviderUnavailableError (503). */
  callerOf(request: HeldRequest): Promise<Caller> {
    let caller = this.callers.get(request);
    if (caller === undefined) {
      caller = this.verify(readBearerToken(request.headers.authorization));
      this.callers.set(request, caller);
    }
    return caller;
  }

  /** The request's caller, or null when its token is missing or cannot be verified now. */
  async verifiedCallerOrNull(request: HeldRequest): Promise<Caller | null> {
    try {
      return await this.callerOf(request);
    } catch (error) {
      // AuthGuard answers these; until then, the request has no caller to count against.
      if (error instanceof InvalidTokenError || error instanceof IdentityProviderUnavailableError) return null;
      throw error;
    }
  }

  private async verify(token: string | undefined): Promise<Caller> {
    if (token === undefined) throw new InvalidTokenError('Send an "Authorization: Bearer <token>" header');
    const remembered = this.rememberedCaller(token);
    if (remembered !== undefined) return remembered;
    const { claims, keysVersion } = await this.verifiedClaims(token);
    const caller = callerFromClaims(claims, this.claimNames);
    if (typeof claims.exp === 'number') this.remember(token, { caller, expiresAtMs: claims.exp * 1000, keysVersion });
    return caller;
  }

  private rememberedCaller(token: string): Caller | undefined {
    const entry = this.verifiedTokens.get(token);
    if (entry === undefined) return undefined;
    if (Date.now() < entry.expiresAtMs && (entry.keysVersion === null || entry.keysVersion === this.identityProvider?.keysVersion)) return entry.caller;
    this.verifiedTokens.delete(token);
    return undefined;
  }

  private remember(token: string, entry: VerifiedToken): void {
    if (this.verifiedTokens.size >= MAX_VERIFIED_TOKENS) {
      // A Map iterates in insertion order: the first key is the oldest.
      const oldest = this.verifiedTokens.keys().next();
      if (oldest.done !== true) this.verifiedTokens.delete(oldest.value);
    }
    this.verifiedTokens.set(token, entry);
  }

  private async verifiedClaims(token: string): Promise<{ claims: JWTPayload; keysVersion: number | null }> {
    const algorithm = algorithmOf(token);
    try {
      if (algorithm === 'HS256' && this.secret !== undefined) {
        const { payload } = await jwtVerify(token, this.secret, { algorithms: ['HS256'], clockTolerance: this.clockToleranceS });
        return { claims: payload, keysVersion: null };
      }
      if (this.identityProvider?.signsWith(algorithm)) return await this.identityProvider.verify(token);
    } catch (error) {
      throw error instanceof errors.JOSEError ? refusedToken(refusalReason(error)) : error;
    }
    throw refusedToken(/^[A-Za-z0-9-]{1,16}$/.test(algorithm) ? `the algorithm "${algorithm}" is not accepted` : 'the algorithm is not accepted');
  }
}

/** The `alg` of the token's header, before anything is verified. */
function algorithmOf(token: string): string {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    // jose throws a plain TypeError for a token that is not three base64url parts with a JSON header.
    throw refusedToken('the token is malformed');
  }
  if (typeof header.alg !== 'string') throw refusedToken('the token names no algorithm');
  return header.alg;
}

/** Why jose refused a token, in words that leak neither keys nor library internals. */
function refusalReason(error: errors.JOSEError): string {
  if (error instanceof errors.JWTExpired) return 'the token has expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === 'missing') return `the token has no "${error.claim}" claim`;
    switch (error.claim) {
      case 'nbf':
        return 'the token is not valid yet';
      case 'iss':
        return 'the token was issued by another issuer';
      case 'aud':
        return 'the token is meant for another audience';
      default:
        return `the token's "${error.claim}" claim is invalid`;
    }
  }
  if (error instanceof errors.JWKSNoMatchingKey) return "no key of the identity provider matches the token's key id";
  if (error instanceof errors.JWKSMultipleMatchingKeys) return 'the token names no key id, and several keys of the identity provider could match';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'the algorithm is not accepted';
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'the signature does not verify';
  return 'the token is malformed or wrongly signed';
}
