import request from 'supertest';
import type { TestApp } from '../support/test-app';

/** Helpers shared by the e2e specs: the HTTP client, fixtures made through the API, and checks. */

export const API = '/api/v1';
export const PROBLEM_JSON = /^application\/problem\+json(;|$)/;
export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const ISO_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
/** A well-formed UUID that no row has. */
export const UNKNOWN_ID = '3f6c1d9e-0b7a-4c2e-9f1d-2a4b6c8d0e1f';

export interface MatchBody {
  id: string;
  title: string;
  startsAt: string;
  capacity: number;
  bookedSlots: number;
  availableSlots: number;
  createdAt: string;
  updatedAt: string;
}

export interface BookingBody {
  id: string;
  matchId: string;
  customerId: string;
  slots: number;
  status: 'confirmed' | 'cancelled';
  createdAt: string;
  cancelledAt: string | null;
}

export interface PageBody<Item> {
  items: Item[];
  nextCursor: string | null;
}

export function adminAuth(t: TestApp): string {
  return `Bearer ${t.token('admin-1', { admin: true })}`;
}

export function customerAuth(t: TestApp, customerId: string): string {
  return `Bearer ${t.token(customerId)}`;
}

export async function createMatch(
  t: TestApp,
  fields: { title?: string; startsAt?: string; capacity?: number } = {},
): Promise<MatchBody> {
  const response = await request(t.server)
    .post(`${API}/matches`)
    .set('Authorization', adminAuth(t))
    .send({ title: 'Lions vs Tigers', startsAt: '2026-12-01T18:30:00Z', capacity: 10, ...fields })
    .expect(201);
  return response.body as MatchBody;
}

export async function getMatch(t: TestApp, matchId: string): Promise<MatchBody> {
  const response = await request(t.server).get(`${API}/matches/${matchId}`).set('Authorization', adminAuth(t)).expect(200);
  return response.body as MatchBody;
}

export async function book(t: TestApp, customerId: string, matchId: string, slots: number): Promise<BookingBody> {
  const response = await request(t.server)
    .post(`${API}/matches/${matchId}/bookings`)
    .set('Authorization', customerAuth(t, customerId))
    .send({ slots })
    .expect(201);
  return response.body as BookingBody;
}

/** Follows nextCursor from the first page to the last one and returns every item in order. */
export async function walkPages<Item>(
  t: TestApp,
  path: string,
  authorization: string,
  query: Record<string, string>,
): Promise<{ items: Item[]; pages: number }> {
  const items: Item[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const response = await request(t.server)
      .get(path)
      .query(cursor === null ? query : { ...query, cursor })
      .set('Authorization', authorization)
      .expect(200);
    const page = response.body as PageBody<Item>;
    items.push(...page.items);
    cursor = page.nextCursor;
    pages += 1;
    if (pages > 1000) throw new Error('pagination does not end');
  } while (cursor !== null);
  return { items, pages };
}

/**
 * Asserts an RFC 9457 problem+json answer with the given status; when `field` is given, the
 * problem must name it in errors[].field. Returns the body for further checks.
 */
export function expectProblem(response: request.Response, status: number, field?: string): Record<string, unknown> {
  expect({ status: response.status, contentType: response.headers['content-type'] }).toEqual({
    status,
    contentType: expect.stringMatching(PROBLEM_JSON),
  });
  const body = JSON.parse(response.text) as Record<string, unknown>;
  expect(body).toEqual(
    expect.objectContaining({
      type: expect.any(String),
      title: expect.any(String),
      status,
      detail: expect.any(String),
    }),
  );
  if (field !== undefined) {
    expect(body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field, message: expect.any(String) })]));
  }
  return body;
}

/** Counts and sums of every row of both tables, plus a digest of their exact contents. */
export interface DatabaseSnapshot {
  matches: number;
  capacity: number;
  bookedSlots: number;
  bookings: number;
  confirmedBookings: number;
  bookedSlotsInBookings: number;
  digest: string;
}

export async function databaseSnapshot(t: TestApp): Promise<DatabaseSnapshot> {
  const [row] = await t.dataSource.query<Array<Record<string, string>>>(
    `SELECT (SELECT count(*) FROM matches) AS matches,
            (SELECT COALESCE(sum(capacity), 0) FROM matches) AS capacity,
            (SELECT COALESCE(sum(booked_slots), 0) FROM matches) AS booked_slots,
            (SELECT count(*) FROM bookings) AS bookings,
            (SELECT count(*) FROM bookings WHERE status = 'confirmed') AS confirmed_bookings,
            (SELECT COALESCE(sum(slots), 0) FROM bookings) AS booked_slots_in_bookings,
            md5((SELECT COALESCE(string_agg(m::text, ',' ORDER BY m.id), '') FROM matches m) ||
                (SELECT COALESCE(string_agg(b::text, ',' ORDER BY b.id), '') FROM bookings b)) AS digest`,
  );
  if (!row) throw new Error('snapshot query returned no row');
  return {
    matches: Number(row.matches),
    capacity: Number(row.capacity),
    bookedSlots: Number(row.booked_slots),
    bookings: Number(row.bookings),
    confirmedBookings: Number(row.confirmed_bookings),
    bookedSlotsInBookings: Number(row.booked_slots_in_bookings),
    digest: String(row.digest),
  };
}

/** Byte strings that must never appear in an error body: SQL, stack frames, driver internals. */
export const LEAK_MARKERS = [
  'SELECT',
  'INSERT',
  'UPDATE ',
  'FROM ',
  'WHERE',
  'relation',
  'column',
  'QueryFailedError',
  'TypeORM',
  'typeorm',
  'stack',
  '    at ',
  'at ',
  '.ts:',
  '.js:',
  'node_modules',
  'does not exist',
];
