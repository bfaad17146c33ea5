import autocannon from 'autocannon';
import { bookingPath } from './api';
import { type LatencySummary, round, summarizeLatencies } from './stats';

const BOOKING_BODY = JSON.stringify({ slots: 1 });

export interface LoadSpec {
  baseUrl: string;
  connections: number;
  /** When to stop: after a duration, or after an exact number of requests (autocannon's `amount`). */
  until: { seconds: number } | { requests: number };
  /** Called once per request: the match it books. */
  pickMatch: () => string;
  customerTokens: readonly string[];
  timeoutSeconds: number;
}

export interface LoadResult {
  connections: number;
  /** Seconds from the start to the last response. */
  durationSeconds: number;
  /** Seconds from the start to the last 201 (for a sell-out: when the last slot went). */
  lastBookingSeconds: number;
  /** Responses received (any status). */
  responses: number;
  statusCounts: Record<string, number>;
  /** 201 responses per second over durationSeconds. */
  bookingsPerSecond: number;
  latency: LatencySummary;
  errors: {
    /** Responses whose status is not 2xx (409s of a sold-out match included). */
    non2xx: number;
    /** Connection errors: a request that got no response because its socket failed. */
    socketErrors: number;
    /** Requests with no response within timeoutSeconds (autocannon then reconnects). */
    timeouts: number;
  };
}

/**
 * Books 1 slot per request with autocannon, each request for the match `pickMatch` returns and
 * as one of the customers (round robin). Latencies are taken from every response as it arrives
 * (fractional milliseconds, all statuses, like autocannon's own histogram), because autocannon's
 * histogram keeps whole milliseconds only, too coarse for sub-millisecond requests.
 */
export async function runLoad(spec: LoadSpec): Promise<LoadResult> {
  let customer = 0;
  const latenciesMs: number[] = [];
  const statusCounts: Record<string, number> = {};
  const startedAt = performance.now();
  let lastResponseAt = startedAt;
  let lastBookingAt = startedAt;

  let finish: (error: unknown, result: autocannon.Result) => void = () => {};
  const finished = new Promise<autocannon.Result>((resolve, reject) => {
    finish = (error, result) => (error ? reject(new Error('autocannon failed', { cause: error })) : resolve(result));
  });
  // The callback form: autocannon then reports errors to it instead of rejecting a promise.
  const instance = autocannon(
    {
      url: spec.baseUrl,
      connections: spec.connections,
      ...('requests' in spec.until ? { amount: spec.until.requests } : { duration: spec.until.seconds }),
      timeout: spec.timeoutSeconds,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: BOOKING_BODY,
      requests: [
        {
          setupRequest: (request) => {
            customer = (customer + 1) % spec.customerTokens.length;
            return {
              ...request,
              path: bookingPath(spec.pickMatch()),
              headers: { ...request.headers, authorization: `Bearer ${spec.customerTokens[customer]}` },
            };
          },
        },
      ],
    },
    (error: unknown, result) => finish(error, result),
  );
  instance.on('response', (_client, statusCode, _bytes, responseTimeMs) => {
    latenciesMs.push(responseTimeMs);
    statusCounts[statusCode] = (statusCounts[statusCode] ?? 0) + 1;
    lastResponseAt = performance.now();
    if (statusCode === 201) lastBookingAt = lastResponseAt;
  });
  const result = await finished;

  // autocannon notices the end only at its next 1 s sample tick, so result.duration can be up
  // to a second too long when `amount` ends the run: measure up to the last response instead.
  const durationSeconds = (lastResponseAt - startedAt) / 1000;
  const created = statusCounts['201'] ?? 0;
  const responses = latenciesMs.length;
  return {
    connections: spec.connections,
    durationSeconds: round(durationSeconds),
    lastBookingSeconds: round((lastBookingAt - startedAt) / 1000),
    responses,
    statusCounts,
    bookingsPerSecond: durationSeconds > 0 ? round(created / durationSeconds, 1) : 0,
    latency: summarizeLatencies(latenciesMs),
    errors: {
      non2xx: responses - Object.entries(statusCounts).reduce((sum, [status, count]) => sum + (status.startsWith('2') ? count : 0), 0),
      // autocannon counts a timeout in `errors` too.
      socketErrors: result.errors - result.timeouts,
      timeouts: result.timeouts,
    },
  };
}
