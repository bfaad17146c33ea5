import { lookup as dnsLookup } from 'node:dns/promises';
import { BlockList, isIP } from 'node:net';

/**
 * Guards outgoing webhooks against server-side request forgery: an endpoint URL must not make
 * this service call itself, its neighbours or a cloud metadata service.
 */

export type WebhookUrlErrorReason =
  | 'invalid-url'
  | 'unsupported-protocol'
  | 'credentials-in-url'
  | 'missing-host'
  | 'private-address'
  | 'dns-lookup-failed';

export class WebhookUrlError extends Error {
  constructor(
    readonly reason: WebhookUrlErrorReason,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = 'WebhookUrlError';
  }
}

export interface ResolvedWebhookAddress {
  address: string;
  family: 4 | 6;
}

export type HostLookup = (hostname: string) => Promise<readonly { address: string; family: number }[]>;

/** IPv4 ranges that are not on the public internet (IANA special-purpose registry). */
const NON_PUBLIC_IPV4: readonly [network: string, prefix: number][] = [
  ['0.0.0.0', 8], // "this network", includes the unspecified address
  ['10.0.0.0', 8],
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8],
  ['169.254.0.0', 16], // link-local, includes cloud metadata 169.254.169.254
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.0.2.0', 24],
  ['192.88.99.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['198.51.100.0', 24],
  ['203.0.113.0', 24],
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, includes broadcast
];

const NON_PUBLIC_IPV6: readonly [network: string, prefix: number][] = [
  ['::', 96], // unspecified, loopback and the deprecated IPv4-compatible addresses
  ['::ffff:0:0:0', 96], // IPv4-translated
  ['64:ff9b:1::', 48], // local-use NAT64
  ['100::', 64], // discard-only
  ['2001::', 23], // IETF protocol assignments, includes Teredo
  ['2001:db8::', 32], // documentation
  ['2002::', 16], // 6to4, which embeds an IPv4 address
  ['3fff::', 20], // documentation
  ['fc00::', 7], // unique local
  ['fe80::', 10], // link-local
  ['fec0::', 10], // deprecated site-local
  ['ff00::', 8], // multicast
];

const nonPublicAddresses = buildBlockList();

function buildBlockList(): BlockList {
  const list = new BlockList();
  for (const [network, prefix] of NON_PUBLIC_IPV4) {
    list.addSubnet(network, prefix, 'ipv4');
    // The same IPv4 hosts reached through IPv4-mapped IPv6 or the well-known NAT64 prefix.
    list.addSubnet(`::ffff:${network}`, 96 + prefix, 'ipv6');
    list.addSubnet(`64:ff9b::${network}`, 96 + prefix, 'ipv6');
  }
  for (const [network, prefix] of NON_PUBLIC_IPV6) {
    list.addSubnet(network, prefix, 'ipv6');
  }
  return list;
}

/** True for an IP address that is not a public unicast address. */
export function isNonPublicAddress(address: string): boolean {
  // BlockList does not match an address that carries an IPv6 zone ("fe80::1%eth0").
  const withoutZone = address.replace(/%.*$/, '');
  const family = isIP(withoutZone);
  if (family === 0) {
    return true;
  }
  return nonPublicAddresses.check(withoutZone, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Validates an endpoint URL when it is registered; no DNS. A host name is only checked when the
 * webhook is sent (resolveWebhookAddress), since its addresses may change.
 */
export function checkWebhookUrl(url: string, allowPrivateNetworks: boolean): URL {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new WebhookUrlError('invalid-url', `"${url}" is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw new WebhookUrlError(
      'unsupported-protocol',
      `A webhook URL must use http or https, not ${parsed.protocol.replace(/:$/, '')}`,
    );
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new WebhookUrlError('credentials-in-url', 'A webhook URL must not contain a user name or password');
  }
  if (parsed.hostname === '') {
    throw new WebhookUrlError('missing-host', 'A webhook URL must name a host');
  }
  const literal = ipLiteral(parsed);
  if (literal !== undefined) {
    assertAllowedAddress(literal, parsed.hostname, allowPrivateNetworks);
  }
  return parsed;
}

/**
 * The address to send a webhook to. Every address the host resolves to must be public, and the
 * caller connects to the returned one, so a second DNS answer cannot point elsewhere (rebinding).
 */
export async function resolveWebhookAddress(
  url: URL,
  allowPrivateNetworks: boolean,
  lookup: HostLookup = (hostname) => dnsLookup(hostname, { all: true }),
): Promise<ResolvedWebhookAddress> {
  const literal = ipLiteral(url);
  if (literal !== undefined) {
    assertAllowedAddress(literal, url.hostname, allowPrivateNetworks);
    return { address: literal, family: isIP(literal) === 6 ? 6 : 4 };
  }

  let resolved: readonly { address: string }[];
  try {
    resolved = await lookup(url.hostname);
  } catch (error) {
    // Often transient, unlike the other reasons: the caller may retry later.
    throw new WebhookUrlError('dns-lookup-failed', `Could not resolve ${url.hostname}: ${describe(error)}`, {
      cause: error,
    });
  }
  const first = resolved[0];
  if (first === undefined) {
    throw new WebhookUrlError('dns-lookup-failed', `${url.hostname} resolved to no address`);
  }
  for (const { address } of resolved) {
    assertAllowedAddress(address, url.hostname, allowPrivateNetworks);
  }
  const family = isIP(first.address);
  if (family !== 4 && family !== 6) {
    throw new WebhookUrlError('dns-lookup-failed', `${url.hostname} resolved to "${first.address}", not an IP address`);
  }
  return { address: first.address, family };
}

function assertAllowedAddress(address: string, hostname: string, allowPrivateNetworks: boolean): void {
  if (!allowPrivateNetworks && isNonPublicAddress(address)) {
    const shown = address === hostname.replace(/^\[|\]$/g, '') ? address : `${hostname} (${address})`;
    throw new WebhookUrlError(
      'private-address',
      `A webhook URL must point to a public address; ${shown} is private, loopback or otherwise not public`,
    );
  }
}

/** The host as a bare IP address, when the URL names one (URL keeps IPv6 in brackets). */
function ipLiteral(url: URL): string | undefined {
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  return isIP(host) === 0 ? undefined : host;
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
