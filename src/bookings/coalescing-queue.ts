/** The outcome of one request of a batch: each request gets its own result or its own error. */
export type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

export interface CoalescingQueueOptions<TRequest, TResult> {
  /** Most requests handed to one `runBatch` call. */
  maxBatch: number;
  /** Most batches running at once. */
  maxConcurrentBatches: number;
  /** A request that waited longer than this for its batch to start fails with `waitTimeoutError()`. */
  maxWaitMs: number;
  waitTimeoutError: () => Error;
  /**
   * Runs one batch, whose requests are in arrival order, and settles each of them (same length,
   * same order). A rejection fails every request of the batch.
   */
  runBatch: (requests: TRequest[]) => Promise<Array<Settled<TResult>>>;
}

interface Waiting<TRequest, TResult> {
  key: string;
  request: TRequest;
  enqueuedAt: number;
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
 *   requests of other keys go on in other batches.
 * When nothing runs, a request starts at once, alone: no delay without a rush.
 */
export class CoalescingQueue<TRequest, TResult> {
  private waiting: Array<Waiting<TRequest, TResult>> = [];
  private readonly busyKeys = new Set<string>();
  private running = 0;

  constructor(private readonly options: CoalescingQueueOptions<TRequest, TResult>) {}

  /** Requests waiting for a batch (not running), for tests and metrics. */
  get waitingRequests(): number {
    return this.waiting.length;
  }

  submit(key: string, request: TRequest): Promise<TResult> {
    return new Promise<TResult>((resolve, reject) => {
      this.waiting.push({ key, request, enqueuedAt: performance.now(), resolve, reject });
      this.startBatches();
    });
  }

  private startBatches(): void {
    while (this.running < this.options.maxConcurrentBatches) {
      const batch = this.takeBatch();
      if (batch.length === 0) return;
      this.running += 1;
      for (const entry of batch) this.busyKeys.add(entry.key);
      void this.run(batch);
    }
  }

  /**
   * The oldest waiting requests whose keys are not in a running batch, up to maxBatch. Requests
   * that waited too long are failed instead of run late.
   */
  private takeBatch(): Array<Waiting<TRequest, TResult>> {
    const oldestAllowed = performance.now() - this.options.maxWaitMs;
    const batch: Array<Waiting<TRequest, TResult>> = [];
    const left: Array<Waiting<TRequest, TResult>> = [];
    for (const entry of this.waiting) {
      if (entry.enqueuedAt < oldestAllowed) entry.reject(this.options.waitTimeoutError());
      else if (batch.length < this.options.maxBatch && !this.busyKeys.has(entry.key)) batch.push(entry);
      else left.push(entry);
    }
    this.waiting = left;
    return batch;
  }

  /** Never rejects: every failure settles the batch's requests. */
  private async run(batch: Array<Waiting<TRequest, TResult>>): Promise<void> {
    try {
      const outcomes = await this.options.runBatch(batch.map((entry) => entry.request));
      batch.forEach((entry, index) => {
        const outcome = outcomes[index];
        if (!outcome) entry.reject(new Error(`The batch settled ${outcomes.length} of ${batch.length} requests`));
        else if (outcome.ok) entry.resolve(outcome.value);
        else entry.reject(outcome.error);
      });
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    } finally {
      for (const entry of batch) this.busyKeys.delete(entry.key);
      this.running -= 1;
      this.startBatches();
    }
  }
}
