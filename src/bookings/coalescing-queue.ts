import { type Context, context, type Span, trace } from '@opentelemetry/api';
import { failSpan, tracer } from '../observability/spans';

/** The outcome of one request of a batch: each request gets its own result or its own error. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface CoalescingQueueOptions<TRequest, TResult> {
  /** Most requests handed to one `runBatch` call. */
  maxBatch: number;
  /** Most batches running at once, while they make progress, not counting rushes (see takeBatch). */
  maxConcurrentBatches: number;
  /**
   * When every running batch has run this long (stuck on a lock held elsewhere, say), waiting
   * requests start batches anyway; the pool's bounded wait then limits them.
   */
  stalledAfterMs: number;
  /** A request that waited longer than this for its batch to start fails with `waitTimeoutError()`. */
  maxWaitMs: number;
  waitTimeoutError: () => Error;
  /**
   * Runs one batch, whose requests are in arrival order, and settles each of them (same length,
   * same order). A rejection fails every request of the batch.
   */
  runBatch: (requests: TRequest[]) => Promise<Array<Settled<TResult>>>;
  /** Names of the queue's spans and of their attributes (see QueueSpanNames). */
  spans: QueueSpanNames;
}

/**
 * With `name` "booking": each request gets a span `booking.queue_wait` (attribute `keyAttribute`:
 * its key) from its arrival until its batch starts; each batch gets a span `booking.batch`
 * (attributes booking.batch.size, `keysAttribute`: its distinct keys, booking.batch.rush,
 * booking.batch.succeeded, booking.batch.failed) around runBatch, which runs in its context.
 * A batch span is a child of its oldest request's span, so a request that runs alone has one
 * trace from end to end; it links to every request's wait span, and each wait span links back.
 */
export interface QueueSpanNames {
  name: string;
  keyAttribute: string;
  keysAttribute: string;
}

/** Requests of one key waiting together that make a rush, decided in a batch of their own. */
export const RUSH_SIZE = 4;

interface Batch<TRequest, TResult> {
  entries: Array<Waiting<TRequest, TResult>>;
  /** The requests of one rushed key, outside the limit on running batches. */
  rush: boolean;
}

interface Waiting<TRequest, TResult> {
  key: string;
  request: TRequest;
  enqueuedAt: number;
  /** The request's context (its trace) when it arrived, and its span of waiting in the queue. */
  context: Context;
  waitSpan: Span;
  resolve: (value: TResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Coalesces concurrent requests into batches, first come first served, with two rules:
 * - at most `maxConcurrentBatches` batches run at once; the requests that arrive meanwhile wait
 *   and form the next batches, so a rush costs one transaction (one statement, one round trip)
 *   per batch instead of one per request;
 * - a key (a match) is in at most one running batch. Its later requests wait for that batch, so
 *   a rush on one key runs one batch at a time, holding one pooled connection, while the
 *   requests of other keys go on in other batches;
 * - a key with many requests waiting (a rush) gets batches of its own, outside the limit on
 *   running batches (see takeBatch).
 * When nothing runs, a request starts at once, alone: no delay without a rush. When every
 * running batch is stalled, the limit on running batches is lifted, so that bookings of other
 * matches are not held up by locks they do not need.
 */
export class CoalescingQueue<TRequest, TResult> {
  private waiting: Array<Waiting<TRequest, TResult>> = [];
  /** How many of `waiting` each key has. */
  private waitingPerKey = new Map<string, number>();
  private readonly busyKeys = new Set<string>();
  /** Start times of the running batches that are not a rush (those count against maxConcurrentBatches). */
  private readonly ordinaryRunning = new Set<number>();
  private stallCheck: NodeJS.Timeout | undefined;
  /** Batches running now, rushes included. */
  private runningBatches = 0;
  private readonly idleWaiters: Array<() => void> = [];

  constructor(private readonly options: CoalescingQueueOptions<TRequest, TResult>) {}

  /** Requests waiting for a batch (not running), for tests and metrics. */
  get waitingRequests(): number {
    return this.waiting.length;
  }

  /**
   * Resolves once no request waits and no batch runs: at shutdown, the batches of requests
   * already taken (whose clients may have gone) finish while the database pool is still open.
   */
  whenIdle(): Promise<void> {
    if (this.isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  private isIdle(): boolean {
    return this.waiting.length === 0 && this.runningBatches === 0;
  }

  submit(key: string, request: TRequest): Promise<TResult> {
    const { name, keyAttribute } = this.options.spans;
    const arrivedIn = context.active();
    const waitSpan = tracer.startSpan(`${name}.queue_wait`, { attributes: { [keyAttribute]: key } }, arrivedIn);
    return new Promise<TResult>((resolve, reject) => {
      this.waiting.push({ key, request, enqueuedAt: performance.now(), context: arrivedIn, waitSpan, resolve, reject });
      const waitingOfKey = (this.waitingPerKey.get(key) ?? 0) + 1;
      this.waitingPerKey.set(key, waitingOfKey);
      if (this.mayStartBatchFor(key, waitingOfKey)) this.startBatches();
      else this.checkForStallLater();
    });
  }

  /**
   * Whether a request's arrival can start a batch: when an ordinary batch may start, or when its
   * key has just become a rush. Otherwise nothing changed for the waiting requests, and scanning
   * them all on every arrival would cost time quadratic in the queue's length under load; the
   * end of a running batch (or the stall check) starts the next ones.
   */
  private mayStartBatchFor(key: string, waitingOfKey: number): boolean {
    return this.mayStartOrdinaryBatch() || (waitingOfKey >= RUSH_SIZE && !this.busyKeys.has(key));
  }

  private startBatches(): void {
    for (;;) {
      const batch = this.takeBatch(this.mayStartOrdinaryBatch());
      if (!batch) break;
      for (const entry of batch.entries) this.busyKeys.add(entry.key);
      void this.run(batch);
    }
    this.checkForStallLater();
  }

  private checkForStallLater(): void {
    if (this.waiting.length > 0 && this.stallCheck === undefined && this.ordinaryRunning.size > 0) {
      // Nothing may start now: look again once the running batches would count as stalled.
      const youngest = Math.max(...this.ordinaryRunning);
      const delayMs = Math.max(1, Math.ceil(youngest + this.options.stalledAfterMs - performance.now()) + 1);
      this.stallCheck = setTimeout(() => {
        this.stallCheck = undefined;
        this.startBatches();
      }, delayMs);
      this.stallCheck.unref();
    }
  }

  private mayStartOrdinaryBatch(): boolean {
    if (this.ordinaryRunning.size < this.options.maxConcurrentBatches) return true;
    const stalledSince = performance.now() - this.options.stalledAfterMs;
    return [...this.ordinaryRunning].every((startedAt) => startedAt <= stalledSince);
  }

  /**
   * The next batch, first come first served among keys that are not in a running batch:
   * - a key with RUSH_SIZE or more requests waiting (a rush on one match) gets a batch of its
   *   own, outside the limit on running batches (it is one batch per key anyway), so that the
   *   rush neither slows the bookings of other matches nor waits for them;
   * - otherwise, if `ordinaryAllowed`, the batch is the waiting requests of the keys with fewer
   *   waiting.
   * At most maxBatch requests. Requests that waited too long are failed instead of run late.
   */
  private takeBatch(ordinaryAllowed: boolean): Batch<TRequest, TResult> | undefined {
    const oldestAllowed = performance.now() - this.options.maxWaitMs;
    const waitingPerKey = new Map<string, number>();
    const eligible: Array<Waiting<TRequest, TResult>> = [];
    const left: Array<Waiting<TRequest, TResult>> = [];
    for (const entry of this.waiting) {
      if (entry.enqueuedAt < oldestAllowed) {
        const error = this.options.waitTimeoutError();
        failSpan(entry.waitSpan, error);
        entry.waitSpan.end();
        entry.reject(error);
      } else if (this.busyKeys.has(entry.key)) {
        left.push(entry);
      } else {
        eligible.push(entry);
        waitingPerKey.set(entry.key, (waitingPerKey.get(entry.key) ?? 0) + 1);
      }
    }
    const isRushed = (entry: Waiting<TRequest, TResult>) => waitingPerKey.get(entry.key)! >= RUSH_SIZE;
    const oldest = eligible[0];
    const rushedKey = oldest && (isRushed(oldest) || !ordinaryAllowed) ? eligible.find(isRushed)?.key : undefined;
    const rush = rushedKey !== undefined;
    const belongs = (entry: Waiting<TRequest, TResult>) => (rush ? entry.key === rushedKey : ordinaryAllowed && !isRushed(entry));
    const entries: Array<Waiting<TRequest, TResult>> = [];
    for (const entry of eligible) {
      if (entries.length < this.options.maxBatch && belongs(entry)) entries.push(entry);
      else left.push(entry);
    }
    // `left` lost the arrival order between busy and eligible requests; restore it.
    this.waiting = left.sort((a, b) => a.enqueuedAt - b.enqueuedAt);
    this.waitingPerKey = new Map();
    for (const entry of this.waiting) this.waitingPerKey.set(entry.key, (this.waitingPerKey.get(entry.key) ?? 0) + 1);
    return entries.length > 0 ? { entries, rush } : undefined;
  }

  /** Never rejects: every failure settles the batch's requests. */
  private async run({ entries: batch, rush }: Batch<TRequest, TResult>): Promise<void> {
    let startedAt = performance.now();
    // Two batches started in the same microsecond must still count twice.
    while (this.ordinaryRunning.has(startedAt)) startedAt += 0.001;
    if (!rush) this.ordinaryRunning.add(startedAt);
    this.runningBatches += 1;
    const batchSpan = this.startBatchSpan(batch, rush);
    try {
      const outcomes = await context.with(trace.setSpan(batch[0]!.context, batchSpan), () => this.options.runBatch(batch.map((entry) => entry.request)));
      const succeeded = outcomes.filter((outcome) => outcome.ok).length;
      batchSpan.setAttributes({ [`${this.options.spans.name}.batch.succeeded`]: succeeded, [`${this.options.spans.name}.batch.failed`]: batch.length - succeeded });
      batch.forEach((entry, index) => {
        const outcome = outcomes[index];
        if (!outcome) entry.reject(new Error(`The batch settled ${outcomes.length} of ${batch.length} requests`));
        else if (outcome.ok) entry.resolve(outcome.value);
        else entry.reject(outcome.error);
      });
    } catch (error) {
      failSpan(batchSpan, error);
      for (const entry of batch) entry.reject(error);
    } finally {
      batchSpan.end();
      for (const entry of batch) this.busyKeys.delete(entry.key);
      if (!rush) this.ordinaryRunning.delete(startedAt);
      this.runningBatches -= 1;
      this.startBatches();
      if (this.isIdle()) for (const resolve of this.idleWaiters.splice(0)) resolve();
    }
  }

  /** Starts the batch's span, in its oldest request's trace, and ends the requests' wait spans, linked to it both ways. */
  private startBatchSpan(batch: Array<Waiting<TRequest, TResult>>, rush: boolean): Span {
    const { name, keysAttribute } = this.options.spans;
    const span = tracer.startSpan(
      `${name}.batch`,
      {
        attributes: { [`${name}.batch.size`]: batch.length, [keysAttribute]: new Set(batch.map((entry) => entry.key)).size, [`${name}.batch.rush`]: rush },
        links: batch.map((entry) => ({ context: entry.waitSpan.spanContext() })),
      },
      batch[0]!.context,
    );
    for (const entry of batch) {
      entry.waitSpan.addLink({ context: span.spanContext() });
      entry.waitSpan.end();
    }
    return span;
  }
}
