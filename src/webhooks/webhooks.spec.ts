import { createServer, type IncomingMessage, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { checkWebhookUrl, resolveWebhookAddress, WebhookUrlError } from './outbound-address';
import { sendWebhook, type WebhookDelivery } from './webhook-sender';
import { generateWebhookSecret, signWebhook, webhookHeaders } from './webhook-signature';

describe('webhook signatures', () => {
  const body = JSON.stringify({ type: 'booking.confirmed', data: { bookingId: 'b_1' } });
  const now = (): number => Math.floor(Date.now() / 1000);

  it('verify with the official standardwebhooks library', () => {
    const secret = generateWebhookSecret();
    const headers = webhookHeaders([secret], 'msg_1', now(), body);

    expect(headers['content-type']).toBe('application/json');
    expect(new Webhook(secret).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('match a signature the library computes', () => {
    const secret = generateWebhookSecret();
    const timestamp = now();

    expect(signWebhook([secret], 'msg_2', timestamp, body)).toBe(
      new Webhook(secret).sign('msg_2', new Date(timestamp * 1000), body),
    );
  });

  it('fail verification with another secret or a changed body', () => {
    const headers = webhookHeaders([generateWebhookSecret()], 'msg_3', now(), body);

    expect(() => new Webhook(generateWebhookSecret()).verify(body, headers)).toThrow('No matching signature');
    expect(() => new Webhook(generateWebhookSecret()).verify(`${body} `, headers)).toThrow('No matching signature');
  });

  it('carry one signature per secret while a secret is rotated, each verifying', () => {
    const previous = generateWebhookSecret();
    const next = generateWebhookSecret();
    const headers = webhookHeaders([next, previous], 'msg_4', now(), body);

    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/=]+ v1,[A-Za-z0-9+/=]+$/);
    expect(new Webhook(previous).verify(body, headers)).toEqual(JSON.parse(body));
    expect(new Webhook(next).verify(body, headers)).toEqual(JSON.parse(body));
  });

  it('refuse malformed secrets', () => {
    const shortKey = `whsec_${Buffer.alloc(16).toString('base64')}`;
    for (const secret of ['', 'secret', 'whsec_', 'whsec_not*base64!', shortKey, 'AAAA'.repeat(10)]) {
      expect(() => signWebhook([secret], 'msg_5', now(), body)).toThrow(/webhook secret/);
    }
  });

  it('refuse an unusable id or timestamp', () => {
    const secret = generateWebhookSecret();
    expect(() => signWebhook([secret], 'msg 6', now(), body)).toThrow(/id/);
    expect(() => signWebhook([secret], 'msg_6', 1.5, body)).toThrow(/timestamp/);
    expect(() => signWebhook([], 'msg_6', now(), body)).toThrow(/secret/);
  });
});

describe('checkWebhookUrl', () => {
  const refusedPrivate = [
    'http://127.0.0.1/hook',
    'http://10.1.2.3/hook',
    'http://169.254.169.254/latest/meta-data/',
    'http://[::1]/hook',
    'http://[fd00::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://100.64.0.1/hook',
    'http://0.0.0.0/hook',
    'http://0x7f.1/hook', // 127.0.0.1 once the URL parser normalizes it
    'http://[64:ff9b::10.0.0.1]/hook',
    'http://[fe80::1]/hook',
  ];

  it.each(refusedPrivate)('refuses %s unless private networks are allowed', (url) => {
    expect(() => checkWebhookUrl(url, false)).toThrow(expect.objectContaining({ reason: 'private-address' }));
    expect(checkWebhookUrl(url, true)).toBeInstanceOf(URL);
  });

  it.each([
    ['ftp://example.com/hook', 'unsupported-protocol'],
    ['file:///etc/passwd', 'unsupported-protocol'],
    ['https://user:pass@example.com/hook', 'credentials-in-url'],
    ['https://user@example.com/hook', 'credentials-in-url'],
    ['not a url', 'invalid-url'],
  ])('refuses %s even with private networks allowed', (url, reason) => {
    expect(() => checkWebhookUrl(url, true)).toThrow(WebhookUrlError);
    expect(() => checkWebhookUrl(url, true)).toThrow(expect.objectContaining({ reason }));
  });

  it('allows public addresses and host names', () => {
    expect(checkWebhookUrl('https://93.184.216.34/hook', false).hostname).toBe('93.184.216.34');
    expect(checkWebhookUrl('https://[2606:4700::1111]/hook', false).hostname).toBe('[2606:4700::1111]');
    expect(checkWebhookUrl('https://hooks.example.com:8443/in?x=1', false).href).toBe(
      'https://hooks.example.com:8443/in?x=1',
    );
  });
});

describe('resolveWebhookAddress', () => {
  const url = new URL('https://hooks.example.com/in');

  it('refuses a host that resolves to a private address, even among public ones', async () => {
    const lookup = () =>
      Promise.resolve([
        { address: '93.184.216.34', family: 4 },
        { address: '192.168.1.10', family: 4 },
      ]);

    await expect(resolveWebhookAddress(url, false, lookup)).rejects.toMatchObject({ reason: 'private-address' });
    await expect(resolveWebhookAddress(url, true, lookup)).resolves.toEqual({ address: '93.184.216.34', family: 4 });
  });

  it('refuses an IPv4-mapped private address from DNS', async () => {
    const lookup = () => Promise.resolve([{ address: '::ffff:169.254.169.254', family: 6 }]);

    await expect(resolveWebhookAddress(url, false, lookup)).rejects.toBeInstanceOf(WebhookUrlError);
  });

  it('returns the first address of a public host', async () => {
    const lookup = () =>
      Promise.resolve([
        { address: '2606:2800:220:1::248', family: 6 },
        { address: '93.184.216.34', family: 4 },
      ]);

    await expect(resolveWebhookAddress(url, false, lookup)).resolves.toEqual({
      address: '2606:2800:220:1::248',
      family: 6,
    });
  });

  it('reports a failed lookup', async () => {
    const lookup = () => Promise.reject(new Error('getaddrinfo ENOTFOUND hooks.example.com'));

    await expect(resolveWebhookAddress(url, false, lookup)).rejects.toMatchObject({ reason: 'dns-lookup-failed' });
  });

  it('refuses localhost through real DNS unless private networks are allowed', async () => {
    const localhost = new URL('http://localhost:8080/hook');

    await expect(resolveWebhookAddress(localhost, false)).rejects.toMatchObject({ reason: 'private-address' });
    const allowed = await resolveWebhookAddress(localhost, true);
    expect(['127.0.0.1', '::1']).toContain(allowed.address);
  });
});

describe('sendWebhook', () => {
  const servers: Server[] = [];

  afterEach(async () => {
    await Promise.all(
      servers.splice(0).map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
  });

  async function startServer(handler: RequestListener): Promise<number> {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  }

  function delivery(port: number, overrides: Partial<WebhookDelivery> = {}): WebhookDelivery {
    return {
      // A name that does not resolve: the request can only arrive through the pinned address.
      url: new URL(`http://hooks.invalid:${port}/in?tenant=7`),
      address: { address: '127.0.0.1', family: 4 },
      headers: { 'content-type': 'application/json' },
      body: '{"type":"ping"}',
      timeoutMs: 2_000,
      maxResponseBytes: 4_096,
      ...overrides,
    };
  }

  function readBody(request: IncomingMessage): Promise<string> {
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      request.on('error', reject);
    });
  }

  it('posts to the pinned address with the URL host in the Host header; 2xx is ok', async () => {
    const received: { method?: string; url?: string; headers?: IncomingMessage['headers']; body?: string }[] = [];
    const port = await startServer((request, response) => {
      void readBody(request).then((body) => {
        received.push({ method: request.method, url: request.url, headers: request.headers, body });
        response.writeHead(204).end();
      });
    });
    const secret = generateWebhookSecret();
    const body = '{"type":"ping"}';
    const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
    const headers = { ...webhookHeaders([secret], 'msg_1', Math.floor(Date.now() / 1000), body), traceparent };

    await expect(sendWebhook(delivery(port, { headers, body }))).resolves.toEqual({ ok: true, status: 204 });

    expect(received).toHaveLength(1);
    const [request] = received;
    expect(request?.method).toBe('POST');
    expect(request?.url).toBe('/in?tenant=7');
    expect(request?.headers?.host).toBe(`hooks.invalid:${port}`);
    expect(request?.headers?.traceparent).toBe(traceparent);
    expect(request?.body).toBe(body);
    expect(new Webhook(secret).verify(request?.body ?? '', request?.headers as Record<string, string>)).toEqual({
      type: 'ping',
    });
  });

  it('reports a 500 with its status and the start of its body', async () => {
    const port = await startServer((_request, response) => {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(`database down\n${'x'.repeat(1_000)}`);
    });

    const result = await sendWebhook(delivery(port));

    expect(result).toMatchObject({ ok: false, status: 500, error: expect.stringContaining('database down') });
    expect(result.ok ? '' : result.error.length).toBeLessThanOrEqual(220);
  });

  it('does not follow a redirect', async () => {
    const paths: string[] = [];
    const port = await startServer((request, response) => {
      paths.push(request.url ?? '');
      if (request.url === '/in?tenant=7') {
        response.writeHead(302, { location: `http://127.0.0.1:${String(request.socket.localPort)}/target` }).end();
      } else {
        response.writeHead(200).end();
      }
    });

    const result = await sendWebhook(delivery(port));
    // Give a wrongly followed redirect the time to arrive.
    await new Promise((resolve) => setTimeout(resolve, 100));

    expect(result).toMatchObject({ ok: false, status: 302 });
    expect(paths).toEqual(['/in?tenant=7']);
  });

  it('gives up on a server that never answers within the timeout', async () => {
    const port = await startServer(() => {
      // Never responds.
    });
    const startedAt = performance.now();

    const result = await sendWebhook(delivery(port, { timeoutMs: 300 }));

    const elapsed = performance.now() - startedAt;
    expect(result).toMatchObject({ ok: false, error: expect.stringContaining('300 ms') });
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(800);
  });

  it('stops reading a huge response body at the limit', async () => {
    const totalBytes = 256 * 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 'a');
    let bytesWritten = 0;
    let serverFinished = false;
    let reportClosed = (): void => undefined;
    const connectionClosed = new Promise<void>((resolve) => {
      reportClosed = resolve;
    });
    const port = await startServer((_request, response) => {
      response.writeHead(500, { 'content-length': String(totalBytes) });
      const writeMore = (): void => {
        while (bytesWritten < totalBytes) {
          bytesWritten += chunk.length;
          if (!response.write(chunk)) {
            response.once('drain', writeMore);
            return;
          }
        }
        serverFinished = true;
        response.end();
      };
      response.on('close', reportClosed);
      writeMore();
    });

    const result = await sendWebhook(delivery(port, { maxResponseBytes: 1_024, timeoutMs: 10_000 }));
    await connectionClosed;

    expect(result).toMatchObject({ ok: false, status: 500 });
    expect(result.ok ? '' : result.error.length).toBeLessThanOrEqual(220);
    expect(serverFinished).toBe(false);
    // Only what the kernel buffers on loopback went out, not the whole body.
    expect(bytesWritten).toBeLessThan(64 * 1024 * 1024);
  });

  it('reports a refused connection without throwing', async () => {
    const port = await startServer(() => undefined);
    await new Promise<void>((resolve) => servers.pop()?.close(() => resolve()));

    await expect(sendWebhook(delivery(port))).resolves.toMatchObject({
      ok: false,
      error: expect.stringContaining('ECONNREFUSED'),
    });
  });
});
