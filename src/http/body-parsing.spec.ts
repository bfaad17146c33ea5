import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { useJsonBodyParsing } from './body-parsing';

/**
 * A plain JSON body ("application/json", no Content-Encoding) is read without body-parser; any
 * other goes through it. Both must answer every body alike: each body below is sent plain and
 * gzipped (which only body-parser can read), and the two answers must be the same.
 */
const LIMIT_BYTES = 1024;
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

const BODIES: Array<[name: string, bytes: Buffer]> = [
  ['an object', Buffer.from('{"slots": 1}')],
  ['an object in whitespace', Buffer.from(' \t\r\n{"slots": 1} \n')],
  ['an object after a byte order mark', Buffer.concat([BOM, Buffer.from('{"slots": 1}')])],
  ['a byte order mark alone', BOM],
  ['whitespace alone', Buffer.from('   ')],
  ['an array', Buffer.from('[1, 2]')],
  ['a string', Buffer.from('"slots"')],
  ['a number', Buffer.from('42')],
  ['null', Buffer.from('null')],
  ['a truncated object', Buffer.from('{"slots": ')],
  ['an object with trailing text', Buffer.from('{"slots": 1} x')],
  ['an unquoted key', Buffer.from('{slots: 1}')],
  ['a __proto__ key', Buffer.from('{"slots": 1, "__proto__": {"admin": true}}')],
  ['invalid UTF-8 in a string', Buffer.concat([Buffer.from('{"title": "a'), Buffer.from([0xff, 0xfe]), Buffer.from('b"}')])],
  ['non-ASCII text', Buffer.from('{"title": "Ünïcödé ⚽"}')],
  ['a body at the limit', Buffer.from(`{"padding": "${'x'.repeat(LIMIT_BYTES - 15)}"}`)],
  ['a body over the limit', Buffer.from(`{"padding": "${'x'.repeat(LIMIT_BYTES)}"}`)],
];

describe('JSON body parsing', () => {
  let app: FastifyInstance;

  beforeAll(async () => {
    app = Fastify();
    useJsonBodyParsing(app, LIMIT_BYTES);
    app.post('/echo', (request) => ({ body: request.body }));
    await app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(() => app.close());

  async function send(payload: Buffer, headers: Record<string, string>): Promise<{ status: number; body: unknown }> {
    const { port } = app.server.address() as AddressInfo;
    const response = await fetch(`http://127.0.0.1:${port}/echo`, { method: 'POST', body: payload, headers });
    return { status: response.status, body: await response.json() };
  }

  it.each(BODIES)('should answer %s read plain as body-parser answers it gzipped', async (_name, bytes) => {
    const plain = await send(bytes, { 'content-type': 'application/json' });
    const gzipped = await send(gzipSync(bytes), { 'content-type': 'application/json', 'content-encoding': 'gzip' });
    expect(plain).toEqual(gzipped);
  });

  it('should parse an object the same with "charset=utf-8" and without', async () => {
    const bytes = Buffer.from('{"title": "Ünïcödé"}');
    await expect(send(bytes, { 'content-type': 'application/json; charset=utf-8' })).resolves.toEqual({
      status: 200,
      body: { body: { title: 'Ünïcödé' } },
    });
    await expect(send(bytes, { 'content-type': 'application/json' })).resolves.toEqual({ status: 200, body: { body: { title: 'Ünïcödé' } } });
  });

  it('should refuse malformed JSON and bodies that are not objects with the problem types of the API', async () => {
    const refusals = await Promise.all(
      ['{"slots": ', '[1]', '42'].map((text) => send(Buffer.from(text), { 'content-type': 'application/json' })),
    );
    expect(refusals.map(({ status, body }) => [status, (body as { type?: string }).type])).toEqual([
      [400, expect.stringMatching(/malformed-json$/)],
      [400, expect.stringMatching(/validation-failed$/)],
      [400, expect.stringMatching(/malformed-json$/)],
    ]);
  });
});
