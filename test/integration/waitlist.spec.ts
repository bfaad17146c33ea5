import request from 'supertest';
import { HoldSweeper } from '../../src/holds/hold-sweeper';
import { ReconciliationJob } from '../../src/inventory/reconciliation.job';
import { createMatch } from '../support/fixtures';
import { startTestApp, type TestApp } from '../support/test-app';

interface Entry {
  id: string;
  matchId: string;
  customerId: string;
  slots: number;
  status: string;
  position: number | null;
  holdId: string | null;
  expiresAt: string | null;
}

const OFFER_TTL_MS = 120_000;

/** The waitlist: freed slots are offered, first come, first served, in the transaction that frees them. */
describe('the waitlist', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ HOLD_SWEEP_INTERVAL_MS: '0', RECONCILE_INTERVAL_MS: '0', WAITLIST_OFFER_TTL_MS: String(OFFER_TTL_MS) });
  });
  afterAll(async () => {
    await t.close();
  });

  const admin = () => `Bearer ${t.token('admin', { admin: true })}`;
  const as = (customer: string) => `Bearer ${t.token(customer)}`;
  const book = (matchId: string, customer: string, slots = 1) =>
    request(t.server).post(`/api/v1/matches/${matchId}/bookings`).set('Authorization', as(customer)).send({ slots });
  const join = (matchId: string, customer: string, slots = 1) =>
    request(t.server).post(`/api/v1/matches/${matchId}/waitlist`).set('Authorization', as(customer)).send({ slots });
  const entry = async (entryId: string): Promise<Entry> =>
    (await request(t.server).get(`/api/v1/waitlist/${entryId}`).set('Authorization', admin()).expect(200)).body as Entry;
  const cancel = (bookingId: string, customer: string) => request(t.server).post(`/api/v1/bookings/${bookingId}/cancel`).set('Authorization', as(customer));
  const confirm = (holdId: string, customer: string, key?: string) => {
    const call = request(t.server).post(`/api/v1/holds/${holdId}/confirm`).set('Authorization', as(customer));
    return key === undefined ? call : call.set('Idempotency-Key', key);
  };
  const match = async (matchId: string) =>
    (await request(t.server).get(`/api/v1/matches/${matchId}`).set('Authorization', admin()).expect(200)).body as {
      capacity: number;
      bookedSlots: number;
      heldSlots: number;
      availableSlots: number;
      waitingEntries: number;
    };
  /** Makes an offer (its hold and its entry) run out now, as if its time had passed. */
  const expireOffer = async (offer: Entry) => {
    await t.dataSource.query(
      `WITH hold AS (UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1 RETURNING expires_at)
       UPDATE waitlist_entries SET expires_at = (SELECT expires_at FROM hold) WHERE id = $2`,
      [offer.holdId, offer.id],
    );
  };

  /** A sold-out match of `capacity` slots, one booking of one slot per customer b0, b1, ... */
  async function soldOut(capacity: number): Promise<{ matchId: string; bookings: Array<{ id: string; customer: string }> }> {
    const matchId = await createMatch(t, capacity);
    const bookings = [];
    for (let i = 0; i < capacity; i++) {
      const response = await book(matchId, `b${i}`).expect(201);
      bookings.push({ id: (response.body as { id: string }).id, customer: `b${i}` });
    }
    return { matchId, bookings };
  }

  /**
   * The invariants, read from the database: counters equal the sums of the rows, booked + held
   * never exceed capacity, every offer has exactly one active hold of its slots and customer,
   * and the reconciliation job agrees.
   */
  async function expectConsistent(...matchIds: string[]): Promise<void> {
    const rows = await t.dataSource.query<Array<{ id: string; ok: boolean; offers_ok: boolean }>>(
      `SELECT m.id,
              m.booked_slots = (SELECT COALESCE(SUM(slots), 0) FROM bookings WHERE match_id = m.id AND status = 'confirmed')
          AND m.held_slots = (SELECT COALESCE(SUM(slots), 0) FROM holds WHERE match_id = m.id AND status = 'active')
          AND m.waiting_entries = (SELECT count(*) FROM waitlist_entries WHERE match_id = m.id AND status = 'waiting')
          AND m.booked_slots + m.held_slots <= m.capacity AS ok,
              NOT EXISTS (
                SELECT 1 FROM waitlist_entries w LEFT JOIN holds h ON h.id = w.hold_id
                 WHERE w.match_id = m.id AND w.status = 'offered'
                   AND (h.id IS NULL OR h.status <> 'active' OR h.slots <> w.slots OR h.customer_id <> w.customer_id)
              ) AS offers_ok
         FROM matches m WHERE m.id = ANY($1::uuid[])`,
      [matchIds],
    );
    expect(rows).toHaveLength(matchIds.length);
    for (const row of rows) expect({ id: row.id, ok: row.ok, offersOk: row.offers_ok }).toEqual({ id: row.id, ok: true, offersOk: true });
    const reconciled = await t.app.get(ReconciliationJob).runOnce();
    expect(reconciled).toMatchObject({ ran: true, mismatches: [], offerMismatches: [] });
  }

  it('should put a customer in line for a sold-out match, once, within the per-customer limit', async () => {
    const matchId = await createMatch(t, 2);
    const early = await join(matchId, 'eager').expect(409);
    expect(early.body).toMatchObject({ type: '/problems/slots-available', matchId, requestedSlots: 1, availableSlots: 2 });
    await book(matchId, 'first', 2).expect(201);

    const joined = await join(matchId, 'ann', 2).expect(201);
    expect(joined.body).toMatchObject({ matchId, customerId: 'ann', slots: 2, status: 'waiting', position: 1, holdId: null, expiresAt: null, resolvedAt: null });
    const second = (await join(matchId, 'ben').expect(201)).body as Entry;
    expect(second.position).toBe(2);
    const again = await join(matchId, 'ann', 1).expect(409);
    expect(again.body).toMatchObject({ type: '/problems/waitlist-entry-exists', matchId, entryId: (joined.body as Entry).id });
    expect(await match(matchId)).toMatchObject({ bookedSlots: 2, heldSlots: 0, availableSlots: 0, waitingEntries: 2 });

    const keyed = () => join(matchId, 'keyed').set('Idempotency-Key', 'join-once');
    const first = await keyed().expect(201);
    const replayed = await keyed().expect(201);
    expect(replayed.body).toEqual(first.body);
    expect(await match(matchId)).toMatchObject({ waitingEntries: 3 });

    await join(matchId, 'big', 3).expect(400);
    await join('3f6c1d9e-0b7a-4c2e-9f1d-2a4b6c8d0e1f', 'ann').expect(404);
    await request(t.server).post(`/api/v1/matches/${matchId}/waitlist`).set('Authorization', as('ann')).send({ slots: 0 }).expect(400);

    const limited = await request(t.server)
      .post('/api/v1/matches')
      .set('Authorization', admin())
      .send({ title: 'Limited', startsAt: '2026-12-01T18:30:00Z', capacity: 3, maxSlotsPerCustomer: 2 })
      .expect(201);
    const limitedId = (limited.body as { id: string }).id;
    await book(limitedId, 'greedy', 2).expect(201);
    await book(limitedId, 'other', 1).expect(201);
    const overLimit = await join(limitedId, 'greedy', 1).expect(409);
    expect(overLimit.body).toMatchObject({ type: '/problems/customer-limit-reached', limit: 2, current: 2, requestedSlots: 1 });
    await expectConsistent(matchId, limitedId);
  });

  it('should show customers their own entries only, and let them leave (again: still 204)', async () => {
    const { matchId } = await soldOut(1);
    const mine = (await join(matchId, 'cora').expect(201)).body as Entry;
    const theirs = (await join(matchId, 'dan').expect(201)).body as Entry;

    await request(t.server).get(`/api/v1/waitlist/${theirs.id}`).set('Authorization', as('cora')).expect(404);
    const list = await request(t.server).get('/api/v1/waitlist').set('Authorization', as('cora')).expect(200);
    expect((list.body as { items: Entry[] }).items.map((e) => e.id)).toEqual([mine.id]);
    const all = await request(t.server).get(`/api/v1/waitlist?matchId=${matchId}`).set('Authorization', admin()).expect(200);
    expect((all.body as { items: Entry[] }).items.map((e) => e.id)).toEqual([theirs.id, mine.id]);
    await request(t.server).get('/api/v1/waitlist?status=unknown').set('Authorization', admin()).expect(400);

    await request(t.server).delete(`/api/v1/waitlist/${theirs.id}`).set('Authorization', as('cora')).expect(404);
    await request(t.server).delete(`/api/v1/waitlist/${mine.id}`).set('Authorization', as('cora')).expect(204);
    await request(t.server).delete(`/api/v1/waitlist/${mine.id}`).set('Authorization', as('cora')).expect(204);
    expect(await entry(mine.id)).toMatchObject({ status: 'left', position: null });
    expect(await entry(theirs.id)).toMatchObject({ status: 'waiting', position: 1 });
    await join(matchId, 'cora').expect(201);
    await expectConsistent(matchId);
  });

  it('should offer two slots freed by concurrent cancellations to the first two in line, keep availability at 0, and pass an expired offer on', async () => {
    const { matchId, bookings } = await soldOut(10);
    const line: Entry[] = [];
    for (const customer of ['w1', 'w2', 'w3']) line.push((await join(matchId, customer).expect(201)).body as Entry);
    expect(line.map((e) => e.position)).toEqual([1, 2, 3]);

    let watching = true;
    const seenAvailable = new Set<number>();
    const watcher = (async () => {
      while (watching) seenAvailable.add((await match(matchId)).availableSlots);
    })();
    const cancelled = await Promise.all(bookings.slice(0, 2).map((b) => cancel(b.id, b.customer)));
    watching = false;
    await watcher;
    expect(cancelled.map((r) => r.status)).toEqual([200, 200]);
    expect([...seenAvailable]).toEqual([0]);

    const [first, second, third] = await Promise.all(line.map((e) => entry(e.id)));
    expect(first).toMatchObject({ status: 'offered', position: null });
    expect(second).toMatchObject({ status: 'offered', position: null });
    expect(third).toMatchObject({ status: 'waiting', position: 1 });
    const offerHold = await request(t.server).get(`/api/v1/holds/${first!.holdId}`).set('Authorization', as('w1')).expect(200);
    expect(offerHold.body).toMatchObject({ customerId: 'w1', slots: 1, status: 'active', expiresAt: first!.expiresAt });
    const ttl = Date.parse(first!.expiresAt!) - Date.parse((offerHold.body as { createdAt: string }).createdAt);
    expect(ttl).toBeGreaterThan(OFFER_TTL_MS - 1_000);
    expect(ttl).toBeLessThanOrEqual(OFFER_TTL_MS);
    expect(await match(matchId)).toMatchObject({ bookedSlots: 8, heldSlots: 2, availableSlots: 0, waitingEntries: 1 });
    await expectConsistent(matchId);

    // The first offer runs out: the sweep expires it and offers its slot to the third in line.
    await expireOffer(first!);
    await t.app.get(HoldSweeper).runOnce();
    expect(await entry(first!.id)).toMatchObject({ status: 'expired' });
    const promoted = await entry(third!.id);
    expect(promoted).toMatchObject({ status: 'offered' });
    await confirm(first!.holdId!, 'w1').expect(410);

    // An offer is confirmed like any hold (with an Idempotency-Key, replayed the same).
    const accepted = await confirm(second!.holdId!, 'w2', 'accept-w2').expect(201);
    const replayed = await confirm(second!.holdId!, 'w2', 'accept-w2').expect(201);
    expect(replayed.body).toEqual(accepted.body);
    expect(accepted.body).toMatchObject({ matchId, customerId: 'w2', slots: 1, status: 'confirmed' });
    expect(await entry(second!.id)).toMatchObject({ status: 'accepted' });
    expect(await match(matchId)).toMatchObject({ bookedSlots: 9, heldSlots: 1, availableSlots: 0, waitingEntries: 0 });
    await expectConsistent(matchId);
  });

  it('should serve the line strictly in order: freed slots wait for a large entry at the head, and nobody jumps it', async () => {
    const { matchId, bookings } = await soldOut(5);
    const big = (await join(matchId, 'big', 3).expect(201)).body as Entry;
    const small1 = (await join(matchId, 'small1').expect(201)).body as Entry;
    const small2 = (await join(matchId, 'small2').expect(201)).body as Entry;

    await cancel(bookings[0]!.id, bookings[0]!.customer).expect(200);
    await cancel(bookings[1]!.id, bookings[1]!.customer).expect(200);
    expect(await match(matchId)).toMatchObject({ bookedSlots: 3, heldSlots: 0, availableSlots: 0, waitingEntries: 3 });
    const refused = await book(matchId, 'walk-in').expect(409);
    expect(refused.body).toMatchObject({ type: '/problems/insufficient-slots', availableSlots: 0 });
    await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', as('walk-in')).send({ slots: 1 }).expect(409);
    expect((await entry(small1.id)).status).toBe('waiting');
    const late = (await join(matchId, 'late').expect(201)).body as Entry;
    expect(late.position).toBe(4);

    await cancel(bookings[2]!.id, bookings[2]!.customer).expect(200);
    expect(await entry(big.id)).toMatchObject({ status: 'offered', slots: 3 });
    expect(await entry(small1.id)).toMatchObject({ status: 'waiting', position: 1 });
    expect(await entry(small2.id)).toMatchObject({ status: 'waiting', position: 2 });

    await cancel(bookings[3]!.id, bookings[3]!.customer).expect(200);
    expect((await entry(small1.id)).status).toBe('offered');
    expect(await entry(small2.id)).toMatchObject({ status: 'waiting', position: 1 });
    expect(await entry(late.id)).toMatchObject({ status: 'waiting', position: 2 });
    await expectConsistent(matchId);
  });

  it('should pass a declined offer on, whether the hold is released or the entry leaves', async () => {
    const { matchId, bookings } = await soldOut(2);
    const [a, b, c] = [
      (await join(matchId, 'a').expect(201)).body as Entry,
      (await join(matchId, 'b').expect(201)).body as Entry,
      (await join(matchId, 'c').expect(201)).body as Entry,
    ];
    await cancel(bookings[0]!.id, bookings[0]!.customer).expect(200);
    const offered = await entry(a.id);
    expect(offered.status).toBe('offered');

    await request(t.server).delete(`/api/v1/holds/${offered.holdId}`).set('Authorization', as('a')).expect(204);
    expect(await entry(a.id)).toMatchObject({ status: 'declined' });
    expect((await entry(b.id)).status).toBe('offered');

    await request(t.server).delete(`/api/v1/waitlist/${b.id}`).set('Authorization', as('b')).expect(204);
    expect(await entry(b.id)).toMatchObject({ status: 'declined' });
    expect((await entry(c.id)).status).toBe('offered');
    expect(await match(matchId)).toMatchObject({ bookedSlots: 1, heldSlots: 1, availableSlots: 0, waitingEntries: 0 });

    // A confirmed offer released afterwards: 409, and nothing given back.
    const accepted = await confirm((await entry(c.id)).holdId!, 'c').expect(201);
    await request(t.server).delete(`/api/v1/holds/${(await entry(c.id)).holdId}`).set('Authorization', as('c')).expect(409);
    await request(t.server).delete(`/api/v1/waitlist/${c.id}`).set('Authorization', as('c')).expect(204);
    expect(await entry(c.id)).toMatchObject({ status: 'accepted' });
    expect(accepted.body).toMatchObject({ status: 'confirmed' });
    expect(await match(matchId)).toMatchObject({ bookedSlots: 2, heldSlots: 0 });
    await expectConsistent(matchId);
  });

  it('should offer the slots of a capacity increase, and close entries a capacity decrease makes unservable', async () => {
    const { matchId } = await soldOut(3);
    const large = (await join(matchId, 'large', 3).expect(201)).body as Entry;
    const one = (await join(matchId, 'one', 1).expect(201)).body as Entry;
    const two = (await join(matchId, 'two', 2).expect(201)).body as Entry;

    const grown = await request(t.server).patch(`/api/v1/matches/${matchId}`).set('Authorization', admin()).send({ capacity: 5 }).expect(200);
    // Two new slots: the head (3) does not fit, so nobody is offered.
    expect(grown.body).toMatchObject({ capacity: 5, heldSlots: 0, availableSlots: 0, waitingEntries: 3 });
    expect((await entry(large.id)).status).toBe('waiting');

    const regrown = await request(t.server).patch(`/api/v1/matches/${matchId}`).set('Authorization', admin()).send({ capacity: 7 }).expect(200);
    expect(regrown.body).toMatchObject({ capacity: 7, heldSlots: 4, availableSlots: 0, waitingEntries: 1 });
    expect((await entry(large.id)).status).toBe('offered');
    expect((await entry(one.id)).status).toBe('offered');
    expect((await entry(two.id)).status).toBe('waiting');

    const shrunkMatch = await soldOut(3);
    const tooLarge = (await join(shrunkMatch.matchId, 'too-large', 3).expect(201)).body as Entry;
    const fits = (await join(shrunkMatch.matchId, 'fits', 1).expect(201)).body as Entry;
    await cancel(shrunkMatch.bookings[0]!.id, shrunkMatch.bookings[0]!.customer).expect(200);
    await request(t.server).patch(`/api/v1/matches/${shrunkMatch.matchId}`).set('Authorization', admin()).send({ capacity: 2 }).expect(200);
    expect(await entry(tooLarge.id)).toMatchObject({ status: 'expired', holdId: null });
    expect(await entry(fits.id)).toMatchObject({ status: 'waiting' });
    await cancel(shrunkMatch.bookings[1]!.id, shrunkMatch.bookings[1]!.customer).expect(200);
    expect((await entry(fits.id)).status).toBe('offered');
    await expectConsistent(matchId, shrunkMatch.matchId);
  });

  it('should give an expired hold to exactly one of 20 bookings, its own confirmation and the sweeper racing at its expiry', async () => {
    for (let round = 0; round < 3; round++) {
      const matchId = await createMatch(t, 5);
      await book(matchId, 'owner', 4).expect(201);
      const held = (await request(t.server).post(`/api/v1/matches/${matchId}/holds`).set('Authorization', as('holder')).send({ slots: 1 }).expect(201)).body as {
        id: string;
      };
      await t.dataSource.query(`UPDATE holds SET expires_at = now() + interval '30 milliseconds' WHERE id = $1`, [held.id]);
      await new Promise((resolve) => setTimeout(resolve, 30));

      const [bookings, confirmation] = await Promise.all([
        Promise.all(Array.from({ length: 20 }, (_, i) => book(matchId, `racer${i}`))),
        confirm(held.id, 'holder'),
        t.app.get(HoldSweeper).runOnce(),
      ]);
      const booked = bookings.filter((r) => r.status === 201).length;
      for (const r of bookings) expect([201, 409]).toContain(r.status);
      expect([201, 410]).toContain(confirmation.status);
      expect(booked + (confirmation.status === 201 ? 1 : 0)).toBe(1);
      expect(await match(matchId)).toMatchObject({ bookedSlots: 5, heldSlots: 0 });
      await expectConsistent(matchId);
    }
  });

  it('should end an offer in exactly one state when its confirmation, its release and the sweeper race', async () => {
    for (let round = 0; round < 6; round++) {
      const { matchId, bookings } = await soldOut(1);
      const waiting = (await join(matchId, 'racer').expect(201)).body as Entry;
      const next = (await join(matchId, 'next').expect(201)).body as Entry;
      await cancel(bookings[0]!.id, bookings[0]!.customer).expect(200);
      const offer = await entry(waiting.id);
      if (round % 2 === 1) await expireOffer(offer);

      const [confirmed, released] = await Promise.all([
        confirm(offer.holdId!, 'racer'),
        request(t.server).delete(`/api/v1/holds/${offer.holdId}`).set('Authorization', as('racer')),
        t.app.get(HoldSweeper).runOnce(),
      ]);
      const final = await entry(waiting.id);
      if (final.status === 'accepted') {
        expect(confirmed.status).toBe(201);
        expect(released.status).toBe(409);
        expect((await entry(next.id)).status).toBe('waiting');
        expect(await match(matchId)).toMatchObject({ bookedSlots: 1, heldSlots: 0 });
      } else {
        expect(['declined', 'expired']).toContain(final.status);
        expect([404, 409, 410]).toContain(confirmed.status);
        expect(released.status).toBe(204);
        expect((await entry(next.id)).status).toBe('offered');
        expect(await match(matchId)).toMatchObject({ bookedSlots: 0, heldSlots: 1 });
      }
      await expectConsistent(matchId);
    }
  });

  it('should return the slots of a booking once, to the right match, when a cancel races its reschedule, and offer them to that match\'s line', async () => {
    for (let round = 0; round < 4; round++) {
      const { matchId: from, bookings } = await soldOut(2);
      const to = await createMatch(t, 3);
      const waiting = (await join(from, 'hopeful').expect(201)).body as Entry;
      const moving = bookings[0]!;

      const [cancelled, moved] = await Promise.all([
        cancel(moving.id, moving.customer),
        request(t.server).post(`/api/v1/bookings/${moving.id}/reschedule`).set('Authorization', as(moving.customer)).send({ toMatchId: to }),
      ]);
      expect(cancelled.status).toBe(200);
      expect([200, 409]).toContain(moved.status);
      expect(await entry(waiting.id)).toMatchObject({ status: 'offered' });
      expect(await match(from)).toMatchObject({ bookedSlots: 1, heldSlots: 1, waitingEntries: 0 });
      expect(await match(to)).toMatchObject({ bookedSlots: 0, heldSlots: 0 });
      await expectConsistent(from, to);
    }

    // Two cancels of a rescheduled booking give its slot back to its new match once.
    const { matchId: from, bookings } = await soldOut(1);
    const to = await createMatch(t, 3);
    const waiting = (await join(from, 'second-hopeful').expect(201)).body as Entry;
    await request(t.server).post(`/api/v1/bookings/${bookings[0]!.id}/reschedule`).set('Authorization', as('b0')).send({ toMatchId: to }).expect(200);
    expect((await entry(waiting.id)).status).toBe('offered');
    const both = await Promise.all([cancel(bookings[0]!.id, 'b0'), cancel(bookings[0]!.id, 'b0')]);
    expect(both.map((r) => r.status)).toEqual([200, 200]);
    expect(await match(to)).toMatchObject({ bookedSlots: 0 });
    expect(await match(from)).toMatchObject({ bookedSlots: 0, heldSlots: 1 });
    await expectConsistent(from, to);
  });

  it('should keep the line consistent while customers join, leave, and bookings are cancelled all at once', async () => {
    const { matchId, bookings } = await soldOut(8);
    const joined = await Promise.all(Array.from({ length: 12 }, (_, i) => join(matchId, `crowd${i}`, 1 + (i % 2))));
    for (const r of joined) expect(r.status).toBe(201);
    const entries = joined.map((r) => r.body as Entry);
    expect(entries.map((e) => e.position).sort((x, y) => x! - y!)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));

    await Promise.all([
      ...bookings.slice(0, 6).map((b) => cancel(b.id, b.customer)),
      ...entries.slice(0, 12).filter((_, i) => i % 4 === 3).map((e) => request(t.server).delete(`/api/v1/waitlist/${e.id}`).set('Authorization', as(e.customerId))),
      ...Array.from({ length: 4 }, (_, i) => book(matchId, `walk-in${i}`)),
    ]);
    await expectConsistent(matchId);

    // Served strictly in line order: every offered entry joined before every still-waiting one.
    // The 9 entries that stay want 12 slots and only 6 are freed, so some always still wait.
    const rows = await t.dataSource.query<Array<{ status: string; line_number: string }>>(
      `SELECT status, line_number FROM waitlist_entries WHERE match_id = $1 AND status IN ('offered', 'waiting') ORDER BY line_number`,
      [matchId],
    );
    const firstWaiting = rows.findIndex((row) => row.status === 'waiting');
    expect(firstWaiting).toBeGreaterThan(0);
    expect(rows.slice(firstWaiting).every((row) => row.status === 'waiting')).toBe(true);
    expect(rows.some((row) => row.status === 'offered')).toBe(true);
    // While the line waits, no walk-in takes a slot.
    const walkIns = await t.dataSource.query<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM bookings WHERE match_id = $1 AND customer_id LIKE 'walk-in%'`, [matchId]);
    expect(walkIns[0]!.n).toBe(0);
  });

  it('should make the reconciliation report an offer that disagrees with its hold, and a wrong count of waiting entries', async () => {
    const { matchId, bookings } = await soldOut(1);
    const offered = (await join(matchId, 'planted').expect(201)).body as Entry;
    await join(matchId, 'still-waiting').expect(201);
    await cancel(bookings[0]!.id, bookings[0]!.customer).expect(200);
    const offer = await entry(offered.id);
    // Written behind the ledger's back: the hold released without its entry, and a wrong count.
    await t.dataSource.query(
      `WITH hold AS (UPDATE holds SET status = 'released', resolved_at = now() WHERE id = $1 RETURNING match_id, slots)
       UPDATE matches SET held_slots = held_slots - hold.slots, waiting_entries = waiting_entries + 2 FROM hold WHERE matches.id = hold.match_id`,
      [offer.holdId],
    );
    try {
      const reconciled = await t.app.get(ReconciliationJob).runOnce();
      expect(reconciled.offerMismatches).toEqual([{ entryId: offered.id, entryStatus: 'offered', holdId: offer.holdId, holdStatus: 'released' }]);
      expect(reconciled.mismatches).toEqual([expect.objectContaining({ matchId, waitingEntries: 3, expectedWaitingEntries: 1 })]);
      const metrics = await request(t.server).get('/metrics').expect(200);
      expect(metrics.text).toMatch(/^waitlist_offer_mismatches 1$/m);
      expect(metrics.text).toMatch(/^waitlist_waiting_entries \d+$/m);
    } finally {
      await t.dataSource.query(
        `WITH hold AS (UPDATE holds SET status = 'active', resolved_at = NULL WHERE id = $1 RETURNING match_id, slots)
         UPDATE matches SET held_slots = held_slots + hold.slots, waiting_entries = waiting_entries - 2 FROM hold WHERE matches.id = hold.match_id`,
        [offer.holdId],
      );
    }
    await expectConsistent(matchId);
  });

  it('should write waitlist events in the transactions that change the entries', async () => {
    const { matchId, bookings } = await soldOut(1);
    const leaver = (await join(matchId, 'leaver').expect(201)).body as Entry;
    const taker = (await join(matchId, 'taker').expect(201)).body as Entry;
    await request(t.server).delete(`/api/v1/waitlist/${leaver.id}`).set('Authorization', as('leaver')).expect(204);
    await cancel(bookings[0]!.id, bookings[0]!.customer).expect(200);
    const offered = await entry(taker.id);
    await confirm(offered.holdId!, 'taker').expect(201);

    const events = await t.dataSource.query<Array<{ type: string; entry: string; data: Entry }>>(
      `SELECT type, data->>'id' AS entry, data FROM events WHERE type LIKE 'waitlist.%' AND data->>'matchId' = $1 ORDER BY transaction_id, position`,
      [matchId],
    );
    expect(events.map((e) => [e.type, e.entry])).toEqual([
      ['waitlist.joined', leaver.id],
      ['waitlist.joined', taker.id],
      ['waitlist.left', leaver.id],
      ['waitlist.offered', taker.id],
      ['waitlist.accepted', taker.id],
    ]);
    expect(events[1]!.data).toMatchObject({ status: 'waiting', position: 2, slots: 1, customerId: 'taker' });
    expect(events[3]!.data).toMatchObject({ status: 'offered', position: null, holdId: offered.holdId, expiresAt: offered.expiresAt });
  });
});
