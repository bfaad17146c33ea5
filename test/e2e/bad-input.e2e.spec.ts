import request from 'supertest';
import { startTestApp, type TestApp } from '../support/test-app';
import {
  adminAuth,
  API,
  book,
  createMatch,
  customerAuth,
  databaseSnapshot,
  type DatabaseSnapshot,
  expectProblem,
} from './helpers';

/**
 * Malformed requests to every write endpoint. Each one must be answered with a 4xx
 * problem+json that names the field at fault (where a field is at fault), never a 500, and
 * must leave the database exactly as it was.
 */

type Endpoint = 'POST /matches' | 'PATCH /matches/:id' | 'POST /matches/:id/bookings' | 'POST /bookings/:id/cancel';

/** A JSON value written verbatim into the body: numbers JSON.stringify cannot produce (1e309). */
class Raw {
  constructor(readonly text: string) {}
}

interface BadRequest {
  name: string;
  endpoint: Endpoint;
  /** Sent as JSON (Raw values verbatim); ignored when `text` is set. */
  body?: Record<string, unknown>;
  /** Sent verbatim as the body. */
  text?: string;
  /** Defaults to application/json when there is a body. */
  contentType?: string;
  /** Replaces the id in the path. */
  id?: string;
  status: number;
  /** The field the problem must name in errors[].field. */
  field?: string;
}

const VALID_MATCH = { title: 'Valid title', startsAt: '2026-12-01T18:30:00Z', capacity: 10 };
const ALL_ENDPOINTS: Endpoint[] = ['POST /matches', 'PATCH /matches/:id', 'POST /matches/:id/bookings', 'POST /bookings/:id/cancel'];
const BODY_ENDPOINTS: Endpoint[] = ['POST /matches', 'PATCH /matches/:id', 'POST /matches/:id/bookings'];

function serialize(body: Record<string, unknown>): string {
  const raws: string[] = [];
  const json = JSON.stringify(body, (_key, value: unknown) => {
    if (value instanceof Raw) {
      raws.push(value.text);
      return `__RAW_${raws.length - 1}__`;
    }
    return value;
  });
  return json.replace(/"__RAW_(\d+)__"/g, (_match, index: string) => raws[Number(index)]!);
}

function describeValue(value: unknown): string {
  if (value instanceof Raw) return value.text;
  if (typeof value === 'string') return JSON.stringify(value.length > 30 ? `${value.slice(0, 12)}…(${value.length} chars)` : value);
  return JSON.stringify(value);
}

const BAD_TITLES: unknown[] = [5, true, null, [], ['A title'], {}, { text: 'A title' }, '', '   ', '\t\n', 'x'.repeat(201), 'a\u0000b'];

const BAD_DATE_TIMES: unknown[] = [
  '2026-02-30T10:00:00Z', // February 30
  '2026-02-29T10:00:00Z', // not a leap year
  '2026-13-01T10:00:00Z',
  '2026-12-01T25:00:00Z',
  '2026-12-01T18:60:00Z',
  '2026-12-01T24:00:00Z',
  '2026-12-01T18:30:00', // no time zone
  '2026-12-01T18:30', // no time zone
  '2026-12-01', // date only
  '2026-12-01 18:30:00Z', // space separator
  '2026-12-01T18:30:00+25:00',
  '2026-12-01T18:30:00.1234567Z', // beyond microseconds
  '0000-01-01T00:00:00Z',
  'tomorrow',
  '',
  1764613800000,
  null,
  true,
  [],
  ['2026-12-01T18:30:00Z'],
  {},
];

/** Bad values for any integer field (capacity, slots). */
const BAD_INTEGERS: unknown[] = [
  '5',
  '',
  true,
  false,
  null,
  [],
  [5],
  {},
  { value: 5 },
  -1,
  -0.5,
  1.5,
  0.000001,
  2 ** 31, // beyond a PostgreSQL integer
  2 ** 53,
  1e20,
  new Raw('1e309'), // JSON.parse gives Infinity
  new Raw('-1e309'),
  new Raw('123456789012345678901234567890'),
];

function fieldCases(endpoint: Endpoint, field: string, values: unknown[], base: Record<string, unknown>): BadRequest[] {
  return values.map((value) => ({
    name: `${field} = ${describeValue(value)}`,
    endpoint,
    body: { ...base, [field]: value },
    status: 400,
    field,
  }));
}

const CASES: BadRequest[] = [
  // ---- POST /matches: every field, wrong in every way
  ...fieldCases('POST /matches', 'title', BAD_TITLES, VALID_MATCH),
  ...fieldCases('POST /matches', 'startsAt', BAD_DATE_TIMES, VALID_MATCH),
  ...fieldCases('POST /matches', 'capacity', [...BAD_INTEGERS, 1_000_001], VALID_MATCH),
  ...(['title', 'startsAt', 'capacity'] as const).map((field): BadRequest => {
    const { [field]: _omitted, ...rest } = VALID_MATCH;
    return { name: `${field} missing`, endpoint: 'POST /matches', body: rest, status: 400, field };
  }),
  { name: 'empty object', endpoint: 'POST /matches', body: {}, status: 400, field: 'title' },
  { name: 'no body at all', endpoint: 'POST /matches', status: 400, field: 'capacity' },
  ...['id', 'bookedSlots', 'availableSlots', 'createdAt', 'updatedAt', 'extra', 'Title'].map(
    (field): BadRequest => ({
      name: `unknown field ${field}`,
      endpoint: 'POST /matches',
      body: { ...VALID_MATCH, [field]: field === 'bookedSlots' ? 5 : 'x' },
      status: 400,
      field,
    }),
  ),

  // ---- PATCH /matches/:id: the same fields, each alone
  ...fieldCases('PATCH /matches/:id', 'title', BAD_TITLES, {}),
  ...fieldCases('PATCH /matches/:id', 'startsAt', BAD_DATE_TIMES, {}),
  ...fieldCases('PATCH /matches/:id', 'capacity', [...BAD_INTEGERS, 1_000_001], {}),
  { name: 'a valid title beside a bad capacity', endpoint: 'PATCH /matches/:id', body: { title: 'Changed', capacity: -5 }, status: 400, field: 'capacity' },
  { name: 'empty object', endpoint: 'PATCH /matches/:id', body: {}, status: 400, field: 'body' },
  { name: 'no body at all', endpoint: 'PATCH /matches/:id', status: 400, field: 'body' },
  ...['id', 'bookedSlots', 'availableSlots', 'extra'].map(
    (field): BadRequest => ({
      name: `unknown field ${field}`,
      endpoint: 'PATCH /matches/:id',
      body: { capacity: 50, [field]: field === 'bookedSlots' ? 0 : 'x' },
      status: 400,
      field,
    }),
  ),

  // ---- POST /matches/:id/bookings
  ...fieldCases('POST /matches/:id/bookings', 'slots', [...BAD_INTEGERS, 0, 11], {}),
  { name: 'slots missing', endpoint: 'POST /matches/:id/bookings', body: {}, status: 400, field: 'slots' },
  { name: 'no body at all', endpoint: 'POST /matches/:id/bookings', status: 400, field: 'slots' },
  ...['customerId', 'status', 'matchId', 'id', 'extra'].map(
    (field): BadRequest => ({
      name: `unknown field ${field}`,
      endpoint: 'POST /matches/:id/bookings',
      body: { slots: 1, [field]: field === 'status' ? 'cancelled' : 'someone-else' },
      status: 400,
      field,
    }),
  ),

  // ---- Keys that a JSON parser or object mapper could treat specially
  ...BODY_ENDPOINTS.flatMap((endpoint): BadRequest[] => {
    const valid = endpoint === 'POST /matches' ? VALID_MATCH : endpoint === 'PATCH /matches/:id' ? { capacity: 50 } : { slots: 1 };
    const prefix = JSON.stringify(valid).slice(0, -1);
    return [
      { name: 'unknown field __proto__', endpoint, text: `${prefix},"__proto__":{"isAdmin":true}}`, status: 400, field: '__proto__' },
      { name: 'unknown field constructor', endpoint, text: `${prefix},"constructor":{"prototype":{}}}`, status: 400, field: 'constructor' },
      { name: 'unknown field prototype', endpoint, text: `${prefix},"prototype":{}}`, status: 400, field: 'prototype' },
    ];
  }),

  // ---- The body itself: not JSON, not an object, too large, not declared as JSON
  ...ALL_ENDPOINTS.flatMap((endpoint): BadRequest[] => [
    { name: 'malformed JSON (truncated)', endpoint, text: '{"title": ', status: 400, field: 'body' },
    { name: 'malformed JSON (unquoted keys)', endpoint, text: '{slots: 1}', status: 400, field: 'body' },
    { name: 'malformed JSON (single quotes)', endpoint, text: "{'slots': 1}", status: 400, field: 'body' },
    { name: 'malformed JSON (trailing comma)', endpoint, text: '{"slots": 1,}', status: 400, field: 'body' },
    { name: 'malformed JSON (NaN)', endpoint, text: '{"slots": NaN}', status: 400, field: 'body' },
    { name: 'JSON array', endpoint, text: '[{"slots": 1}]', status: 400, field: 'body' },
    { name: 'empty JSON array', endpoint, text: '[]', status: 400, field: 'body' },
    { name: 'JSON string', endpoint, text: '"slots"', status: 400, field: 'body' },
    { name: 'JSON number', endpoint, text: '42', status: 400, field: 'body' },
    { name: 'JSON null', endpoint, text: 'null', status: 400, field: 'body' },
    { name: 'JSON true', endpoint, text: 'true', status: 400, field: 'body' },
    { name: 'body over 16 KiB', endpoint, body: { slots: 1, padding: 'x'.repeat(16 * 1024) }, status: 413 },
    { name: 'body over 16 KiB of whitespace', endpoint, text: `{${' '.repeat(16 * 1024 + 1)}}`, status: 413 },
    { name: 'content type text/plain', endpoint, text: '{"slots": 1}', contentType: 'text/plain', status: 415 },
    { name: 'content type form-urlencoded', endpoint, text: 'slots=1', contentType: 'application/x-www-form-urlencoded', status: 415 },
    { name: 'content type XML', endpoint, text: '<slots>1</slots>', contentType: 'application/xml', status: 415 },
    { name: 'content type multipart', endpoint, text: '--b\r\n\r\n1\r\n--b--', contentType: 'multipart/form-data; boundary=b', status: 415 },
    { name: 'unsupported charset', endpoint, text: '{"slots": 1}', contentType: 'application/json; charset=latin1', status: 415 },
  ]),

  // ---- Ids in the path that are not UUIDs
  ...(['PATCH /matches/:id', 'POST /matches/:id/bookings', 'POST /bookings/:id/cancel'] as const).flatMap((endpoint) =>
    [
      'not-a-uuid',
      '12345',
      '3f6c1d9e0b7a4c2e9f1d2a4b6c8d0e1f', // no dashes
      '3f6c1d9e-0b7a-4c2e-9f1d-2a4b6c8d0e1', // one digit short
      'zf6c1d9e-0b7a-4c2e-9f1d-2a4b6c8d0e1f', // not hexadecimal
      "x' OR '1'='1",
      '%00',
    ].map(
      (id): BadRequest => ({
        name: `id ${JSON.stringify(id)}`,
        endpoint,
        id: encodeURIComponent(id),
        body: endpoint === 'PATCH /matches/:id' ? { capacity: 50 } : endpoint === 'POST /matches/:id/bookings' ? { slots: 1 } : undefined,
        status: 400,
        field: 'id',
      }),
    ),
  ),
];

describe('Bad input to the write endpoints', () => {
  let t: TestApp;
  let matchId: string;
  let bookingId: string;

  beforeAll(async () => {
    t = await startTestApp();
    // Rows for the endpoints to act on, so a request that wrongly succeeds would change them.
    matchId = (await createMatch(t, { title: 'Target', capacity: 20 })).id;
    bookingId = (await book(t, 'alice', matchId, 2)).id;
    await book(t, 'bob', matchId, 3);
  });

  afterAll(async () => {
    await t.close();
  });

  function send(testCase: BadRequest): request.Test {
    const id = testCase.id ?? (testCase.endpoint === 'POST /bookings/:id/cancel' ? bookingId : matchId);
    const client = request(t.server);
    let pending: request.Test;
    switch (testCase.endpoint) {
      case 'POST /matches':
        pending = client.post(`${API}/matches`).set('Authorization', adminAuth(t));
        break;
      case 'PATCH /matches/:id':
        pending = client.patch(`${API}/matches/${id}`).set('Authorization', adminAuth(t));
        break;
      case 'POST /matches/:id/bookings':
        pending = client.post(`${API}/matches/${id}/bookings`).set('Authorization', customerAuth(t, 'alice'));
        break;
      case 'POST /bookings/:id/cancel':
        pending = client.post(`${API}/bookings/${id}/cancel`).set('Authorization', customerAuth(t, 'alice'));
        break;
    }
    const text = testCase.text ?? (testCase.body === undefined ? undefined : serialize(testCase.body));
    if (text === undefined) return pending;
    return pending.set('Content-Type', testCase.contentType ?? 'application/json').send(text);
  }

  let initial: DatabaseSnapshot;

  beforeAll(async () => {
    initial = await databaseSnapshot(t);
  });

  it.each(CASES)('$endpoint with $name should answer $status problem+json, naming the field, and change nothing', async (testCase) => {
    const before = await databaseSnapshot(t);

    const response = await send(testCase);

    expectProblem(response, testCase.status, testCase.field);
    expect(await databaseSnapshot(t)).toEqual(before);
  });

  it('should have left the database exactly as it was before all the bad requests', async () => {
    expect(await databaseSnapshot(t)).toEqual(initial);
    expect(initial).toMatchObject({ matches: 1, capacity: 20, bookedSlots: 5, bookings: 2, confirmedBookings: 2, bookedSlotsInBookings: 5 });
  });

  it('should still accept a well-formed request to every endpoint afterwards (the fixtures were valid)', async () => {
    const created = await request(t.server).post(`${API}/matches`).set('Authorization', adminAuth(t)).send(VALID_MATCH);
    const patched = await request(t.server).patch(`${API}/matches/${matchId}`).set('Authorization', adminAuth(t)).send({ capacity: 50 });
    const booked = await request(t.server)
      .post(`${API}/matches/${matchId}/bookings`)
      .set('Authorization', customerAuth(t, 'alice'))
      .send({ slots: 1 });
    const cancelled = await request(t.server).post(`${API}/bookings/${bookingId}/cancel`).set('Authorization', customerAuth(t, 'alice'));

    expect([created.status, patched.status, booked.status, cancelled.status]).toEqual([201, 200, 201, 200]);
  });
});
