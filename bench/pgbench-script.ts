import { LOCK_MATCHES_SQL, RESERVE_SLOTS_SQL } from '../src/inventory/slot-ledger';

/**
 * The SQL that pgbench runs: the service's reservation transaction of one booking, exactly as the
 * service sends it for a batch of one: START TRANSACTION (what TypeORM sends), LOCK_MATCHES_SQL
 * and RESERVE_SLOTS_SQL (both in src/inventory/slot-ledger.ts), each prepared once per connection (-M prepared), COMMIT, on a
 * session whose lock_timeout is set at connection time (PGOPTIONS). Its parameters are replaced
 * by what pgbench can produce. The service's speed-up under load comes from deciding many
 * bookings with one such transaction, which pgbench, one booking per transaction, does not do.
 *
 * pgbench's \set makes numbers only, and match ids are UUIDs, so pgbench books matches of its
 * own, whose ids are derived from an integer n; the SQL turns n back into the uuid.
 */

export type PgbenchWorkload = 'hot' | 'spread';

/** The spread workload picks one of the matches numbered 1..SPREAD_MATCH_COUNT per transaction. */
export const SPREAD_MATCH_COUNT = 1000;

/** The hot workload books the match whose number is given to pgbench as `-D hot_match=<n>`. */
export const HOT_MATCH_VARIABLE = 'hot_match';

/** The customer id of every booking pgbench makes (so its bookings can be counted). */
export const PGBENCH_CUSTOMER_ID = 'pgbench';

/** The service's DATABASE_LOCK_TIMEOUT_MS default, which the bench leaves unchanged; pgbench gets it as PGOPTIONS. */
export const PGBENCH_SESSION_OPTIONS = '-c lock_timeout=3000';

const ID_PREFIX = '00000000-0000-4000-8000-';

/** SQL expression of the uuid of match number `:n` (a pgbench variable, sent as a parameter). */
const MATCH_ID_SQL = `('${ID_PREFIX}' || lpad(to_hex(:n::int), 12, '0'))::uuid`;

/** Inserts the pgbench matches numbered first..last (inclusive), each with the given capacity. */
export function pgbenchMatchesSql(first: number, last: number, capacity: number): string {
  return `INSERT INTO matches (id, title, starts_at, capacity)
SELECT ('${ID_PREFIX}' || lpad(to_hex(n), 12, '0'))::uuid, 'pgbench match ' || n, now() + interval '30 days', ${capacity}
  FROM generate_series(${first}, ${last}) AS n`;
}

/** What each parameter of RESERVE_SLOTS_SQL becomes: one request of 1 slot, without an Idempotency-Key. */
const RESERVATION_OF_ONE: Record<string, string> = {
  $1: `ARRAY[${MATCH_ID_SQL}]`,
  $2: 'ARRAY[gen_random_uuid()]',
  $3: `ARRAY['${PGBENCH_CUSTOMER_ID}']`,
  $4: 'ARRAY[1]',
  $5: 'ARRAY[NULL]',
  $6: 'ARRAY[NULL]',
  $7: 'ARRAY[NULL]',
  $8: 'ARRAY[NULL]',
  $9: 'ARRAY[NULL]',
  $10: 'ARRAY[NULL]',
};

/** Replaces the $n parameters of one of the service's statements with what pgbench can produce. */
function withPgbenchParameters(name: string, sql: string, values: Record<string, string>): string {
  const statement = sql.replace(/\$\d+/g, (parameter) => {
    const value = values[parameter];
    if (value === undefined) throw new Error(`${name} has a parameter ${parameter} that the pgbench script does not fill`);
    return value;
  });
  // pgbench reads ":name" as a variable even inside a string literal, with no escape.
  if (/:[A-Za-z]/.test(statement.replaceAll(MATCH_ID_SQL, '').replace(/::[a-z]/g, ''))) {
    throw new Error(`${name} contains ":name", which pgbench would read as a variable`);
  }
  return `${statement};`;
}

/** The pgbench script of one booking of 1 slot: the service's reservation transaction for a batch of one. */
export function pgbenchScript(workload: PgbenchWorkload): string {
  const pick = workload === 'hot' ? `\\set n :${HOT_MATCH_VARIABLE}` : `\\set n random(1, ${SPREAD_MATCH_COUNT})`;
  return [
    pick,
    'START TRANSACTION;',
    withPgbenchParameters('LOCK_MATCHES_SQL', LOCK_MATCHES_SQL, { $1: RESERVATION_OF_ONE.$1! }),
    withPgbenchParameters('RESERVE_SLOTS_SQL', RESERVE_SLOTS_SQL, RESERVATION_OF_ONE),
    'COMMIT;',
    '',
  ].join('\n');
}
