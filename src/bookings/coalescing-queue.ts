/** The outcome of one request of a batch: each request gets its own result or its own error. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface CoalescingQueueOptions<TRequest, TResult> {
  /** Most requests handed to one `runBatch` call. */
  maxBatch: number;
  /** A request that waited longer than this for its batch to start fails with `waitTimeoutError()`. */
  maxWaitMs: number;
  waitTimeoutError: () => Error;
  /**
   * Runs one batch of requests of one key, in arrival order, and settles each of them
   * (same length, same order). A rejection fails every request of the batch.
   */
  runBatch: (key: string, requests: TRequest[]) => Promise<Array<Settled<TResult>>>;
}

interface Waiting<TRequest, TResult> {
  request: TRequest;
  enqueuedAt: number;
  resolve: (value: TResult) => void;
  reject: (error: unknown) => void;
}

/**
 * Coalesces concurrent requests for the same key (a match) into batches, with at most one batch
 * per key running at a time. A request for an idle key starts at once, alone; the requests that
 * arrive while a batch runs form the next batch, first come first served. So a burst on one key
 * costs one transaction (and one pooled connection) per batch instead of one per request, and
 * adds no delay when there is no burst.
 */
export class CoalescingQueue<TRequest, TResult> {
  private readonly waiting = new Map<string, Array<Waiting<TRequest, TResult>>>();

  constructor(private readonly options: CoalescingQueueOptions<TRequest, TResult>) {}

  /** Keys with a batch running, for tests and metrics. */
  get activeKeys(): number {
    return this.waiting.size;
  }

  submit(key: string, request: TRequest): Promise<TResult> {
    return new Promise<TResult>((resolve, reject) => {
      const entry = { request, enqueuedAt: performance.now(), resolve, reject };
      const queue = this.waiting.get(key);
      if (queue) {
        queue.push(entry);
        return;
      }
      this.waiting.set(key, [entry]);
      void this.drain(key);
    });
  }

  /** Runs batches for `key` until nobody waits for it. Never rejects: every failure settles its requests. */
  private async drain(key: string): Promise<void> {
    const queue = this.waiting.get(key)!;
    while (queue.length > 0) {
      const batch = this.takeBatch(queue);
      if (batch.length === 0) continue;
      try {
        const outcomes = await this.options.runBatch(
          key,
          batch.map((entry) => entry.request),
        );
        batch.forEach((entry, index) => {
          const outcome = outcomes[index];
          if (!outcome) entry.reject(new Error(`The batch settled ${outcomes.length} of ${batch.length} requests`));
          else if (outcome.ok) entry.resolve(outcome.value);
          else entry.reject(outcome.error);
        });
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
    this.waiting.delete(key);
  }

  /** The next batch, failing the requests that waited too long instead of running them late. */
  private takeBatch(queue: Array<Waiting<TRequest, TResult>>): Array<Waiting<TRequest, TResult>> {
    const oldestAllowed = performance.now() - this.options.maxWaitMs;
    const batch: Array<Waiting<TRequest, TResult>> = [];
    while (queue.length > 0 && batch.length < this.options.maxBatch) {
      const entry = queue.shift()!;
      if (entry.enqueuedAt < oldestAllowed) entry.reject(this.options.waitTimeoutError());
      else batch.push(entry);
    }
    return batch;
  }
}
