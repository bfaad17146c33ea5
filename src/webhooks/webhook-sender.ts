import { request as httpRequest, type ClientRequest, type IncomingMessage, type RequestOptions } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import type { ResolvedWebhookAddress } from './outbound-address';

export interface WebhookDelivery {
  url: URL;
  /** Where to connect, from resolveWebhookAddress; the URL's host is not looked up again. */
  address: ResolvedWebhookAddress;
  /** Signature headers and any extra ones (e.g. traceparent); Host and Content-Length are set here. */
  headers: Record<string, string>;
  body: string;
  /** For the whole exchange: connecting, sending and receiving the response. */
  timeoutMs: number;
  maxResponseBytes: number;
}

export type WebhookResponse = { ok: true; status: number } | { ok: false; status?: number; error: string };

const ERROR_SNIPPET_CHARS = 200;

/**
 * One POST of a webhook. Resolves with ok only for a 2xx answer; every failure, including
 * network errors and redirects (never followed, so an endpoint cannot bounce the request to an
 * internal address), resolves with ok: false.
 */
export function sendWebhook(delivery: WebhookDelivery): Promise<WebhookResponse> {
  const { url, address, headers, body, timeoutMs, maxResponseBytes } = delivery;
  return new Promise<WebhookResponse>((resolve) => {
    let request: ClientRequest | undefined;
    let settled = false;
    const settle = (result: WebhookResponse): void => {
      if (settled) {
        return;
      }
      settled = true;
      clearTimeout(timer);
      // Nothing more is needed from the connection, and a new one is opened for every delivery.
      request?.destroy();
      resolve(result);
    };
    let responseStatus: number | undefined;
    const timer = setTimeout(() => {
      settle(failure(responseStatus, `no complete response within ${timeoutMs} ms`));
    }, timeoutMs);

    let send: typeof httpRequest;
    if (url.protocol === 'http:') {
      send = httpRequest;
    } else if (url.protocol === 'https:') {
      send = httpsRequest;
    } else {
      settle(failure(undefined, `unsupported protocol ${url.protocol}`));
      return;
    }

    const urlHost = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const options: RequestOptions & { servername?: string } = {
      method: 'POST',
      // Connecting to the pinned address itself, not the host name, is what defeats DNS rebinding.
      host: address.address,
      family: address.family,
      port: url.port === '' ? undefined : Number(url.port),
      path: `${url.pathname}${url.search}`,
      headers: {
        ...headers,
        host: url.host,
        'content-length': String(Buffer.byteLength(body)),
      },
      // A pooled socket could lead to an address pinned for an earlier delivery.
      agent: false,
    };
    if (url.protocol === 'https:' && isIP(urlHost) === 0) {
      // SNI and certificate checks use the URL's host name, not the address connected to.
      options.servername = urlHost;
    }

    try {
      request = send(options);
    } catch (error) {
      // Invalid header values throw synchronously.
      settle(failure(undefined, describe(error)));
      return;
    }
    request.on('error', (error) => {
      settle(failure(responseStatus, describe(error)));
    });
    request.on('response', (response) => {
      responseStatus = response.statusCode;
      const status = response.statusCode ?? 0;
      response.on('error', (error) => {
        settle(failure(status, describe(error)));
      });
      if (status >= 200 && status < 300) {
        settle({ ok: true, status });
        return;
      }
      if (status >= 300 && status < 400) {
        const location = response.headers.location;
        settle(failure(status, `HTTP ${status}: redirect${location ? ` to ${snippet(location)}` : ''} not followed`));
        return;
      }
      readLimited(response, maxResponseBytes, (text) => {
        settle(failure(status, `HTTP ${status}${text === '' ? '' : `: ${text}`}`));
      });
    });
    request.end(body);
  });
}

/** Reads up to maxBytes of the body (the socket is destroyed after) for a short error message. */
function readLimited(response: IncomingMessage, maxBytes: number, done: (text: string) => void): void {
  const chunks: Buffer[] = [];
  let length = 0;
  const finish = (): void => {
    response.removeAllListeners('data');
    done(snippet(Buffer.concat(chunks).toString('utf8')));
  };
  if (maxBytes <= 0) {
    finish();
    return;
  }
  response.on('data', (chunk: Buffer) => {
    const wanted = Math.min(chunk.length, maxBytes - length);
    chunks.push(chunk.subarray(0, wanted));
    length += wanted;
    if (length >= maxBytes) {
      finish();
    }
  });
  response.on('end', finish);
}

function failure(status: number | undefined, error: string): WebhookResponse {
  return status === undefined ? { ok: false, error } : { ok: false, status, error };
}

function snippet(text: string): string {
  return text.replace(/\s+/g, ' ').trim().slice(0, ERROR_SNIPPET_CHARS);
}

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
