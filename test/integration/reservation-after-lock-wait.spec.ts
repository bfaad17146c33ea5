import request from 'supertest';
import type { QueryRunner } from 'typeorm';
import { Reservations } from '../../src/bookings/reservations';
import { LockTimeoutError, MatchNotFoundError } from '../../src/errors/domain-errors';
import { SlotLedger } from '../../src/inventory/slot-ledger';
import { createMatch, lockMatchRow, matchCounters, untilLockWaiters } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/test-app';

/**
 * A reservation that waits for a match row lock must decide and write from the row the lock
 * holder committed. These tests interleave two sessions deterministically: the lock holder
 * frees slots (a cancellation, a released hold) while a batch waits for the lock, then commits.
 */
describe('a reservation that waited for the match lock', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ DATABASE_LOCK_TIMEOUT_MS: '1500', HOLD_SWEEP_INTERVAL_MS: '0', RECONCILE_INTERVAL_MS: '0' });
  });
  afterAll(async () => {
    await t.close();
  });

  const as = (customer: string) => `Bearer ${t.token(customer)}`;

  /** Runs `change` in a transaction that holds the match row lock, and commits it only once `waiter` waits for that lock. */
  async function commitWhileWaiting<T>(matchId: string, change: (queryRunner: QueryRunner) => Promise<unknown>, waiter: () => Promise<T>): Promise<T> {
    const holder = t.dataSource.createQueryRunner();
    await holder.connect();
    try {
      await holder.startTransaction();
      await t.app.get(SlotLedger).lockMatch(holder, matchId, 'test-holder');
      await change(holder);
      const waiting = waiter();
      await untilLockWaiters(t, 1);
      await holder.commitTransaction();
      return await waiting;
    } finally {
      await holder.release();
    }
  }

  async function counters(matchId: string) {
    const [row] = await t.dataSource.query<[{ booked_slots: number; held_slots: number; active: number }]>(
      `SELECT booked_slots, held_slots, (SELECT COALESCE(SUM(slots), 0)::int FROM holds WHERE match_id = m.id AND status = 'active') AS active
         FROM matches m WHERE id = $1`,
      [matchId],
    );
    return { ...(await matchCounters(t, matchId)), heldSlots: row.held_slots, activeHoldSlots: row.active };
  }

  const twoRequestsOfTwo = (matchId: string) => [
    { matchId, customerId: 'waiter-1', slots: 2 },
    { matchId, customerId: 'waiter-2', slots: 2 },
  ];

  it('should book with the slots that a cancellation committed while the batch waited', async () => {
    const matchId = await createMatch(t, 5);
    const booked = await request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as('leaver')).send({ slots: 3 }).expect(201);

    const outcomes = await commitWhileWaiting(
      matchId,
      (holder) => t.app.get(SlotLedger).cancelBooking(holder, (booked.body as { id: string }).id, matchId),
      () => t.app.get(Reservations).reserve(twoRequestsOfTwo(matchId)),
    );

    expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, true]);
    expect(await counters(matchId)).toEqual({ capacity: 5, bookedSlots: 4, confirmedSlots: 4, confirmedBookings: 2, heldSlots: 0, activeHoldSlots: 0 });
  });

  it('should book with the slots that a hold release committed while the batch waited', async () => {
    const matchId = await createMatch(t, 5);
    const held = await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', as('holder')).send({ slots: 3 }).expect(201);

    const outcomes = await commitWhileWaiting(
      matchId,
      (holder) => t.app.get(SlotLedger).releaseHold(holder, { id: (held.body as { id: string }).id, matchId }),
      () => t.app.get(Reservations).reserve(twoRequestsOfTwo(matchId)),
    );

    expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, true]);
    expect(await counters(matchId)).toEqual({ capacity: 5, bookedSlots: 4, confirmedSlots: 4, confirmedBookings: 2, heldSlots: 0, activeHoldSlots: 0 });
  });

  it('should answer 201 over HTTP to bookings that waited on a cancellation that freed their slots', async () => {
    const matchId = await createMatch(t, 5);
    const booked = await request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as('leaver')).send({ slots: 5 }).expect(201);

    const responses = await commitWhileWaiting(
      matchId,
      (holder) => t.app.get(SlotLedger).cancelBooking(holder, (booked.body as { id: string }).id, matchId),
      () =>
        Promise.all([2, 2, 1].map((slots, i) =>
          request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as(`http-waiter-${i}`)).send({ slots }).then((r) => r),
        )),
    );

    expect(responses.map((r) => r.status)).toEqual([201, 201, 201]);
    expect(await matchCounters(t, matchId)).toEqual({ capacity: 5, bookedSlots: 5, confirmedSlots: 5, confirmedBookings: 3 });
  });

  it('should still book the other matches of a batch, and answer 404 for an unknown one, when one match stays locked past lock_timeout', async () => {
    const stuck = await createMatch(t, 5, 'stuck');
    const free = await createMatch(t, 5, 'free');
    const other = await createMatch(t, 5, 'other');
    const unknown = '00000000-0000-4000-8000-00000000abcd';
    const holder = await lockMatchRow(t.databaseUrl, stuck);
    try {

      const outcomes = await t.app.get(Reservations).reserve([
        { matchId: free, customerId: 'batch-0', slots: 2 },
        { matchId: stuck, customerId: 'batch-1', slots: 1 },
        { matchId: unknown, customerId: 'batch-2', slots: 1 },
        { matchId: other, customerId: 'batch-3', slots: 3 },
        { matchId: free, customerId: 'batch-4', slots: 3 },
        { matchId: stuck, customerId: 'batch-5', slots: 1 },
      ]);

      expect(outcomes.map((outcome) => outcome.ok)).toEqual([true, false, false, true, true, false]);
      expect(outcomes[1]).toEqual({ ok: false, error: expect.any(LockTimeoutError) });
      expect(outcomes[5]).toEqual({ ok: false, error: expect.any(LockTimeoutError) });
      expect(outcomes[2]).toEqual({ ok: false, error: expect.any(MatchNotFoundError) });
    } finally {
      await holder.query('ROLLBACK');
      await holder.end();
    }
    expect(await matchCounters(t, free)).toEqual({ capacity: 5, bookedSlots: 5, confirmedSlots: 5, confirmedBookings: 2 });
    expect(await matchCounters(t, other)).toEqual({ capacity: 5, bookedSlots: 3, confirmedSlots: 3, confirmedBookings: 1 });
    expect(await matchCounters(t, stuck)).toEqual({ capacity: 5, bookedSlots: 0, confirmedSlots: 0, confirmedBookings: 0 });
  });
});
