import { parseArgs } from 'node:util';

export interface BenchOptions {
  quick: boolean;
  /** Keep the match_booking_bench database after the run (to look at it). */
  keep: boolean;
  /** The service connects through a PgBouncer in transaction mode (DATABASE_POOLER=transaction); pgbench stays direct. */
  pgbouncer: boolean;
  /** The service writes a V8 CPU profile of its run into the results folder. */
  profile: boolean;
  /** Length of every timed step, for the service (autocannon) and for pgbench (-T). */
  stepSeconds: number;
  warmupSeconds: number;
  warmupConnections: number;
  /** Concurrent connections of the hot and spread steps, and pgbench clients. */
  concurrencies: readonly number[];
  /** Matches the spread traffic picks from at random, one per request. */
  spreadMatches: number;
  /** Capacity of the hot and spread matches: ample, so every request books. The API's maximum. */
  ampleCapacity: number;
  /** Connections of each of the two autocannon instances of the mixed step. */
  mixedConnections: number;
  sellOut: { requests: number; capacity: number; connections: number };
  /** autocannon gives up on a request after this long and counts a timeout. */
  requestTimeoutSeconds: number;
  /** Customer tokens the bookings are spread over (one is picked per request). */
  customers: number;
  /** Connections of the tracing cost steps (spread traffic, one service per TRACING_SETTINGS entry). */
  tracingConnections: number;
}

/**
 * The tracing cost steps: the same spread step on a fresh service per setting, tracing off and
 * on at two sampling rates, spans going to an OTLP/HTTP sink the bench runs. A root span (no
 * traceparent comes in) is sampled at the ratio; parentbased_ is what a deployment behind a
 * tracing load balancer would use.
 */
export const TRACING_SETTINGS: ReadonlyArray<{ label: string; sampling: number | null }> = [
  { label: 'tracing off', sampling: null },
  { label: 'tracing on, 100 % sampled', sampling: 1 },
  { label: 'tracing on, 1 % sampled', sampling: 0.01 },
];

const USAGE = `Usage: tsx bench/run.ts [--quick] [--keep] [--pgbouncer] [--profile]
  --quick      short steps (about a minute in all); the sell-out still sends 10,000 requests
  --keep       keep the match_booking_bench database afterwards
  --pgbouncer  the service connects through PgBouncer in transaction mode (needs pgbouncer on the PATH);
               pgbench stays direct, so the ratios compare the service through PgBouncer with pgbench direct
  --profile    write a V8 CPU profile of the service's whole run to the results folder (service.cpuprofile:
               open it in Chrome DevTools or speedscope, or fold it into a flame graph)
`;

export class UsageError extends Error {
  override readonly name = 'UsageError';
}

export function parseOptions(argv: string[]): BenchOptions {
  let values: { quick?: boolean; keep?: boolean; pgbouncer?: boolean; profile?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        quick: { type: 'boolean' },
        keep: { type: 'boolean' },
        pgbouncer: { type: 'boolean' },
        profile: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }));
  } catch (error) {
    throw new UsageError(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`, { cause: error });
  }
  if (values.help === true) throw new UsageError(USAGE);
  const quick = values.quick === true;
  return {
    quick,
    keep: values.keep === true,
    pgbouncer: values.pgbouncer === true,
    profile: values.profile === true,
    stepSeconds: quick ? 2 : 10,
    warmupSeconds: quick ? 2 : 5,
    warmupConnections: 16,
    concurrencies: [1, 16, 64, 256],
    spreadMatches: 1000,
    ampleCapacity: 1_000_000,
    mixedConnections: 64,
    sellOut: { requests: 10_000, capacity: 1000, connections: 64 },
    requestTimeoutSeconds: 10,
    customers: 100,
    tracingConnections: 64,
  };
}
