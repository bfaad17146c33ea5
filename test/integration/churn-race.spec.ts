import type { AddressInfo } from 'node:net';
import { createMatch } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/test-app';

const CLIENTS = 48;
const DURATION_MS = 6_000;
const CAPACITIES = [5, 10, 20, 30];
/** Every answer each action may give; anything else (a 5xx above all) fails the test. */
const DOCUMENTED: Record<Action, number[]> = {
  book: [201, 409],
  replay: [201, 409],
  cancel: [200],
  reschedule: [200, 409],
  hold: [201, 409],
  confirm: [201, 409, 410],
  release: [204, 409],
};

type Action = 'book' | 'replay' | 'cancel' | 'reschedule' | 'hold' | 'confirm' | 'release';

interface Answer {
  action: Action;
  status: number;
  body: { id?: string; type?: string; matchId?: string; status?: string };
}

/** What a client believes about its own bookings, from the answers it got: checked against the database afterwards. */
interface ClientModel {
  bookings: Map<string, { matchId: string; status: 'confirmed' | 'cancelled' }>;
  holds: string[];
}

/**
 * Small matches close to sold out while customers book, cancel, reschedule, hold, confirm,
 * release and re-send Idempotency-Keys, all at once, for several seconds, with holds expiring
 * and the sweeper running meanwhile. Every answer must be a documented one (no 5xx at all), and
 * afterwards the database must agree with every answer and with its own counters.
 */
describe('a churn of every write on small matches', () => {
  let t: TestApp;
  let baseUrl: string;
  beforeAll(async () => {
    t = await startTestApp({ HOLD_TTL_MS: '1000', HOLD_SWEEP_INTERVAL_MS: '300', RECONCILE_INTERVAL_MS: '0' });
    baseUrl = `http://127.0.0.1:${(t.server.address() as AddressInfo).port}/api/v1`;
  });
  afterAll(async () => {
    await t.close();
  });

  it(`should answer ${CLIENTS} clients for ${DURATION_MS / 1000} s with documented statuses only, and leave counters equal to their rows`, async () => {
    const matchIds = await Promise.all(CAPACITIES.map((capacity, i) => createMatch(t, capacity, `churn-${i}`)));
    const answers: Answer[] = [];
    const models = new Map<string, ClientModel>();
    const deadline = Date.now() + DURATION_MS;

    async function send(customer: string, action: Action, method: string, path: string, body?: unknown, key?: string): Promise<Answer> {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${t.token(customer)}`,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(key === undefined ? {} : { 'idempotency-key': key }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      const answer: Answer = { action, status: response.status, body: text ? (JSON.parse(text) as Answer['body']) : {} };
      answers.push(answer);
      return answer;
    }

    async function client(index: number): Promise<void> {
      const customer = `churner-${index}`;
      const model: ClientModel = { bookings: new Map(), holds: [] };
      models.set(customer, model);
      const pick = <T>(items: T[]): T => items[Math.floor(Math.random() * items.length)]!;
      const confirmed = () => [...model.bookings].filter(([, booking]) => booking.status === 'confirmed').map(([id]) => id);
      for (let round = 0; Date.now() < deadline; round += 1) {
        const roll = Math.random();
        const matchId = pick(matchIds);
        const slots = 1 + Math.floor(Math.random() * 3);
        if (roll < 0.3 || (roll < 0.6 && confirmed().length === 0)) {
          const key = round % 3 === 0 ? `${customer}-${round}` : undefined;
          const first = await send(customer, 'book', 'POST', `/matches/${matchId}/bookings`, { slots }, key);
          if (first.status === 201) model.bookings.set(first.body.id!, { matchId, status: 'confirmed' });
          if (key !== undefined) {
            const again = await send(customer, 'replay', 'POST', `/matches/${matchId}/bookings`, { slots }, key);
            // A stored 201 is replayed as it was; a refusal is not stored, so the retry is decided again.
            if (first.status === 201) expect([again.status, again.body.id]).toEqual([201, first.body.id]);
            else if (again.status === 201) model.bookings.set(again.body.id!, { matchId, status: 'confirmed' });
          }
        } else if (roll < 0.45) {
          const bookingId = pick(confirmed());
          const answer = await send(customer, 'cancel', 'POST', `/bookings/${bookingId}/cancel`, undefined, `${customer}-cancel-${round}`);
          if (answer.status === 200) model.bookings.set(bookingId, { ...model.bookings.get(bookingId)!, status: 'cancelled' });
        } else if (roll < 0.6) {
          const bookingId = pick(confirmed());
          const answer = await send(customer, 'reschedule', 'POST', `/bookings/${bookingId}/reschedule`, { toMatchId: matchId });
          if (answer.status === 200) model.bookings.set(bookingId, { matchId, status: 'confirmed' });
        } else if (roll < 0.8 || model.holds.length === 0) {
          const answer = await send(customer, 'hold', 'POST', `/matches/${matchId}/holds`, { slots });
          if (answer.status === 201) model.holds.push(answer.body.id!);
        } else if (roll < 0.9) {
          const holdId = model.holds.shift()!;
          const answer = await send(customer, 'confirm', 'POST', `/holds/${holdId}/confirm`);
          if (answer.status === 201) model.bookings.set(answer.body.id!, { matchId: answer.body.matchId!, status: 'confirmed' });
        } else {
          await send(customer, 'release', 'DELETE', `/holds/${model.holds.shift()!}`);
        }
      }
    }

    await Promise.all(Array.from({ length: CLIENTS }, (_, index) => client(index)));

    const unexpected = answers.filter((answer) => !DOCUMENTED[answer.action].includes(answer.status));
    expect(unexpected.slice(0, 5)).toEqual([]);
    // The race is real: slots ran out, holds expired, and every kind of write succeeded at least once.
    const statuses = new Set(answers.map((answer) => `${answer.action} ${answer.status}`));
    for (const expected of ['book 201', 'book 409', 'cancel 200', 'reschedule 200', 'hold 201', 'hold 409', 'confirm 201', 'release 204']) {
      expect(statuses).toContain(expected);
    }

    const matches = await t.dataSource.query<Array<{ id: string; capacity: number; booked_slots: number; held_slots: number; confirmed: number; active: number }>>(
      `SELECT m.id, m.capacity, m.booked_slots, m.held_slots,
              (SELECT COALESCE(SUM(slots), 0)::int FROM bookings WHERE match_id = m.id AND status = 'confirmed') AS confirmed,
              (SELECT COALESCE(SUM(slots), 0)::int FROM holds WHERE match_id = m.id AND status = 'active') AS active
         FROM matches m WHERE m.id = ANY($1::uuid[])`,
      [matchIds],
    );
    for (const match of matches) {
      expect({ booked: match.booked_slots, held: match.held_slots }).toEqual({ booked: match.confirmed, held: match.active });
      expect(match.booked_slots + match.held_slots).toBeLessThanOrEqual(match.capacity);
    }

    // Every 201 has its row, every 200 its cancellation or its move, as the client was told.
    const believed = [...models.values()].flatMap((model) => [...model.bookings].map(([id, booking]) => ({ id, ...booking })));
    const rows = await t.dataSource.query<Array<{ id: string; match_id: string; status: string }>>(
      'SELECT id, match_id, status FROM bookings WHERE id = ANY($1::uuid[])',
      [believed.map((booking) => booking.id)],
    );
    const stored = new Map(rows.map((row) => [row.id, { matchId: row.match_id, status: row.status }]));
    expect(believed.filter((booking) => JSON.stringify(stored.get(booking.id)) !== JSON.stringify({ matchId: booking.matchId, status: booking.status }))).toEqual([]);
    process.stdout.write(`[measured] churn: ${answers.length} answers from ${CLIENTS} clients in ${DURATION_MS / 1000} s, ${[...statuses].sort().join(', ')}\n`);
  });
});
