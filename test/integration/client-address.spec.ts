import { request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { createMatch } from '../support/fixtures';
import { type HaproxyChild, spawnHaproxy } from '../support/haproxy';
import { freePort } from '../support/ports';
import { startTestApp, type TestApp } from '../support/test-app';

const PER_IP = 5;
/** Only the per-IP limit, counted in memory (no REDIS_URL), in a window longer than any test here. */
const IP_LIMIT_ONLY = { RATE_LIMIT_PER_IP: String(PER_IP), RATE_LIMIT_PER_CUSTOMER: '0', RATE_LIMIT_WINDOW_MS: '60000' };

interface Answer {
  status: number;
  limit?: string;
}

/** One booking from `sourceAddress` (a loopback address of this machine), to `port`, with an X-Forwarded-For if given. */
function bookFrom(t: TestApp, port: number, matchId: string, customer: string, sourceAddress: string, forwardedFor?: string): Promise<Answer> {
  const body = JSON.stringify({ slots: 1 });
  return new Promise((resolve, reject) => {
    const call = httpRequest(
      {
        host: '127.0.0.1',
        port,
        localAddress: sourceAddress,
        method: 'POST',
        path: `/api/v1/matches/${matchId}/bookings`,
        agent: false,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${t.token(customer)}`,
          ...(forwardedFor === undefined ? {} : { 'x-forwarded-for': forwardedFor }),
        },
      },
      (response) => {
        let text = '';
        response.setEncoding('utf8');
        response.on('data', (chunk: string) => (text += chunk));
        response.on('end', () => resolve({ status: response.statusCode ?? 0, limit: text ? (JSON.parse(text) as { limit?: string }).limit : undefined }));
      },
    );
    call.once('error', reject);
    call.end(body);
  });
}

/** Sends `count` bookings one after another, each from a customer of its own, so that only the per-IP limit can refuse them. */
async function burst(count: number, send: (customer: string, i: number) => Promise<Answer>): Promise<Answer[]> {
  const answers: Answer[] = [];
  for (let i = 0; i < count; i += 1) answers.push(await send(`client-${Math.random().toString(36).slice(2)}`, i));
  return answers;
}

const limitedAfter = (count: number, total: number): Answer[] => [
  ...Array.from({ length: count }, () => ({ status: 201, limit: undefined })),
  ...Array.from({ length: total - count }, () => ({ status: 429, limit: 'ip' })),
];

/**
 * The per-IP write limit counts the client's real address: the socket's peer, or with
 * TRUST_PROXY the right-most X-Forwarded-For entry that no trusted proxy sent. A client's own
 * X-Forwarded-For must never buy it a fresh budget.
 */
describe('the client address of the per-IP limit and the access log', () => {
  describe('without trusted proxies (TRUST_PROXY unset)', () => {
    let t: TestApp;
    const logLines: string[] = [];
    beforeAll(async () => {
      t = await startTestApp(IP_LIMIT_ONLY, { logDestination: { write: (line: string) => logLines.push(line) } });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('should ignore a spoofed X-Forwarded-For: the limit trips at its count, and the log shows the socket address', async () => {
      const matchId = await createMatch(t, 100);
      const port = (t.server.address() as AddressInfo).port;
      const answers = await burst(PER_IP + 3, (customer, i) => bookFrom(t, port, matchId, customer, '127.0.0.5', `198.51.100.${i + 1}`));

      expect(answers).toEqual(limitedAfter(PER_IP, PER_IP + 3));
      const accessLog = logLines.map((line) => JSON.parse(line) as { req?: { url: string; clientAddress: string } }).filter((entry) => entry.req?.url.endsWith('/bookings'));
      expect(accessLog.length).toBe(PER_IP + 3);
      for (const entry of accessLog) expect(entry.req?.clientAddress).toBe('127.0.0.5');
    });
  });

  describe('behind HAProxy, with TRUST_PROXY set to its address', () => {
    let t: TestApp;
    let haproxy: HaproxyChild;
    let haproxyPort: number;
    let dir: string;
    const logLines: string[] = [];
    beforeAll(async () => {
      // HAProxy reaches the service from 127.0.0.1; the clients reach HAProxy from other loopback addresses.
      t = await startTestApp({ ...IP_LIMIT_ONLY, TRUST_PROXY: '127.0.0.1' }, { logDestination: { write: (line: string) => logLines.push(line) } });
      dir = await mkdtemp(path.join(os.tmpdir(), 'match-booking-haproxy-'));
      haproxyPort = await freePort();
      haproxy = await spawnHaproxy(
        dir,
        `
defaults
  mode http
  timeout connect 2s
  timeout client 10s
  timeout server 10s

frontend main
  bind 127.0.0.1:${haproxyPort}
  # appends the address of the client it received the request from
  option forwardfor
  default_backend service

backend service
  server only 127.0.0.1:${(t.server.address() as AddressInfo).port}
`,
      );
      const deadline = Date.now() + 10_000;
      while ((await fetch(`http://127.0.0.1:${haproxyPort}/health/live`).then((r) => r.status, () => 0)) !== 200) {
        if (Date.now() > deadline) throw new Error(`haproxy did not start:\n${haproxy.output()}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    });
    afterAll(async () => {
      await haproxy?.stop();
      await t?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('should limit clients with different real addresses separately, and log each real address', async () => {
      const matchId = await createMatch(t, 100);
      const first = await burst(PER_IP + 1, (customer) => bookFrom(t, haproxyPort, matchId, customer, '127.0.0.2'));
      const second = await burst(PER_IP + 1, (customer) => bookFrom(t, haproxyPort, matchId, customer, '127.0.0.3'));

      expect(first).toEqual(limitedAfter(PER_IP, PER_IP + 1));
      expect(second).toEqual(limitedAfter(PER_IP, PER_IP + 1));
      const clientAddresses = logLines
        .map((line) => JSON.parse(line) as { req?: { url: string; clientAddress: string; remoteAddress: string } })
        .filter((entry) => entry.req?.url.endsWith('/bookings'))
        .map((entry) => [entry.req?.clientAddress, entry.req?.remoteAddress]);
      expect(clientAddresses).toEqual([
        ...Array.from({ length: PER_IP + 1 }, () => ['127.0.0.2', '127.0.0.1']),
        ...Array.from({ length: PER_IP + 1 }, () => ['127.0.0.3', '127.0.0.1']),
      ]);
    });

    it('should limit a client by its real address when it adds a fake left-most entry of its own', async () => {
      const matchId = await createMatch(t, 100);
      const answers = await burst(PER_IP + 3, (customer, i) => bookFrom(t, haproxyPort, matchId, customer, '127.0.0.4', `203.0.113.${i + 1}, 10.0.0.${i + 1}`));

      expect(answers).toEqual(limitedAfter(PER_IP, PER_IP + 3));
    });
  });
});
