import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedWebhook {
  headers: IncomingHttpHeaders;
  body: string;
  receivedAt: number;
}

/** What the receiver does with its n-th request (from 1): answer with a status (at once, or when the promise settles), or never answer. */
export type ReceiverBehaviour = (request: ReceivedWebhook, n: number) => number | 'hang' | Promise<number>;

export interface WebhookReceiver {
  url: string;
  port: number;
  received: ReceivedWebhook[];
  /** The bodies of the requests received, parsed. */
  events(): Array<{ id: string; type: string; occurredAt: string; data: Record<string, unknown> }>;
  setBehaviour(behaviour: ReceiverBehaviour): void;
  /** Resolves once `predicate` holds for the requests received, or rejects after `timeoutMs`. */
  waitFor(predicate: (received: ReceivedWebhook[]) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

/** A real HTTP receiver on 127.0.0.1 that records every request; by default it answers 200. */
export async function startWebhookReceiver(port = 0, behaviour: ReceiverBehaviour = () => 200): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const hanging = new Set<ServerResponse>();
  let current = behaviour;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const webhook = { headers: request.headers, body: Buffer.concat(chunks).toString('utf8'), receivedAt: Date.now() };
      received.push(webhook);
      const answer = current(webhook, received.length);
      if (answer === 'hang') {
        hanging.add(response);
        return;
      }
      const reply = (status: number) => response.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'no');
      if (typeof answer === 'number') reply(answer);
      else void answer.then(reply);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actualPort = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${actualPort}/hooks`,
    port: actualPort,
    received,
    events: () => received.map((r) => JSON.parse(r.body) as { id: string; type: string; occurredAt: string; data: Record<string, unknown> }),
    setBehaviour: (next) => (current = next),
    waitFor: async (predicate, timeoutMs = 15_000, what = 'the expected webhooks') => {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(received)) {
        if (Date.now() > deadline) throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}; received ${received.length} request(s)`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
    close: async () => {
      for (const response of hanging) response.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
