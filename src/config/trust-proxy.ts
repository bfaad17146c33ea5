import { isIP } from 'node:net';
import { ConfigurationError } from './environment';

/**
 * Which peers may tell the client's address in X-Forwarded-For, in the form Fastify's
 * trustProxy option takes (proxy-addr's, as Express's 'trust proxy' setting did):
 * - false (TRUST_PROXY unset): none; the client is the socket's peer;
 * - a hop count: that many proxies in front of the service, each appending the address it
 *   received from (the client is the entry that many hops from the right);
 * - addresses, CIDR ranges, or the names loopback, linklocal, uniquelocal: the balancers.
 * The client address is then the right-most entry not sent by a trusted proxy, never an entry
 * that the client could write itself. Trusting every peer (true) is refused for that reason.
 */
export type TrustProxy = false | number | string[];

const NAMED_RANGES = new Set(['loopback', 'linklocal', 'uniquelocal']);

export function parseTrustProxy(value: string | undefined): TrustProxy {
  const text = value?.trim() ?? '';
  if (text === '' || text === 'false' || text === '0') return false;
  if (/^\d+$/.test(text)) {
    const hops = Number(text);
    if (hops > 10) throw new ConfigurationError(`Invalid configuration: TRUST_PROXY=${text} hops; a chain of more than 10 proxies is surely a mistake`);
    return hops;
  }
  if (text === 'true' || text === '*') {
    throw new ConfigurationError(
      `Invalid configuration: TRUST_PROXY=${text} would believe any client's X-Forwarded-For (and let it pick its own rate-limit bucket); give the number of proxies in front of the service, or their addresses or CIDR ranges`,
    );
  }
  const entries = text.split(',').map((entry) => entry.trim()).filter((entry) => entry !== '');
  const invalid = entries.filter((entry) => !NAMED_RANGES.has(entry) && !isAddressOrRange(entry));
  if (invalid.length > 0) {
    throw new ConfigurationError(
      `Invalid configuration: TRUST_PROXY entries ${invalid.map((entry) => `"${entry}"`).join(', ')} are not a hop count, an IP address, a CIDR range, or one of loopback, linklocal, uniquelocal`,
    );
  }
  return entries;
}

function isAddressOrRange(entry: string): boolean {
  const [address = '', prefix, ...rest] = entry.split('/');
  const version = isIP(address);
  if (version === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  return /^\d{1,3}$/.test(prefix) && Number(prefix) <= (version === 4 ? 32 : 128);
}
