import { createHmac, randomBytes } from 'node:crypto';

/**
 * Signing of outgoing webhooks per Standard Webhooks (https://www.standardwebhooks.com/):
 * HMAC-SHA256 over "id.timestamp.body", sent as "v1,<base64>" in the webhook-signature header.
 */

const SECRET_PREFIX = 'whsec_';
// The spec asks for keys of 24 to 64 bytes; fewer is too weak to sign with.
const MIN_SECRET_BYTES = 24;
const MAX_SECRET_BYTES = 64;
const GENERATED_SECRET_BYTES = 32;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

export function generateWebhookSecret(): string {
  return `${SECRET_PREFIX}${randomBytes(GENERATED_SECRET_BYTES).toString('base64')}`;
}

/** Throws when the secret is not "whsec_" followed by base64 of 24 to 64 bytes. */
export function assertWebhookSecret(secret: string): void {
  decodeSecret(secret);
}

/**
 * The webhook-signature header value. Several secrets give several space-separated signatures,
 * so that during a rotation a receiver holding either the new or the previous secret can verify.
 */
export function signWebhook(secrets: readonly string[], id: string, timestampSeconds: number, body: string): string {
  if (secrets.length === 0) {
    throw new Error('signWebhook needs at least one secret');
  }
  assertMessageId(id);
  assertTimestamp(timestampSeconds);
  const signedContent = `${id}.${timestampSeconds}.${body}`;
  return secrets
    .map((secret) => `v1,${createHmac('sha256', decodeSecret(secret)).update(signedContent, 'utf8').digest('base64')}`)
    .join(' ');
}

export function webhookHeaders(
  secrets: readonly string[],
  id: string,
  timestampSeconds: number,
  body: string,
): Record<string, string> {
  return {
    'webhook-id': id,
    'webhook-timestamp': String(timestampSeconds),
    'webhook-signature': signWebhook(secrets, id, timestampSeconds, body),
    'content-type': 'application/json',
  };
}

function decodeSecret(secret: string): Buffer {
  if (!secret.startsWith(SECRET_PREFIX)) {
    throw new Error(`A webhook secret must start with "${SECRET_PREFIX}"`);
  }
  const encoded = secret.slice(SECRET_PREFIX.length);
  // Buffer.from(…, 'base64') skips invalid characters silently; a typo must not shorten the key.
  if (encoded.length % 4 !== 0 || !BASE64.test(encoded)) {
    throw new Error(`A webhook secret must be "${SECRET_PREFIX}" followed by standard base64`);
  }
  const key = Buffer.from(encoded, 'base64');
  if (key.length < MIN_SECRET_BYTES || key.length > MAX_SECRET_BYTES) {
    throw new Error(
      `A webhook secret must decode to ${MIN_SECRET_BYTES} to ${MAX_SECRET_BYTES} bytes, not ${key.length}`,
    );
  }
  return key;
}

function assertMessageId(id: string): void {
  // The id travels in a header, so it must be printable ASCII without spaces.
  if (!/^[\x21-\x7e]+$/.test(id)) {
    throw new Error('A webhook id must be non-empty printable ASCII without whitespace');
  }
}

function assertTimestamp(timestampSeconds: number): void {
  if (!Number.isSafeInteger(timestampSeconds) || timestampSeconds < 0) {
    throw new Error(`A webhook timestamp must be whole Unix seconds, not ${timestampSeconds}`);
  }
}
