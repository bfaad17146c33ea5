import { CoalescingQueue, type Settled } from './coalescing-queue';

class WaitTimeout extends Error {}

/** A runBatch whose batches finish only when the test says so, recording what each batch held. */
function controllableRunner() {
  const batches: Array<{ key: string; requests: number[]; finish: (outcomes?: Array<Settled<string>>) => void; fail: (error: Error) => void }> = [];
  const runBatch = (key: string, requests: number[]) =>
    new Promise<Array<Settled<string>>>((resolve, reject) => {
      batches.push({
        key,
        requests,
        finish: (outcomes) => resolve(outcomes ?? requests.map((r) => ({ ok: true, value: `${key}:${r}` }))),
        fail: reject,
      });
    });
  return { batches, runBatch };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('CoalescingQueue', () => {
  function queue(runBatch: (key: string, requests: number[]) => Promise<Array<Settled<string>>>, options: { maxBatch?: number; maxWaitMs?: number } = {}) {
    return new CoalescingQueue<number, string>({
      maxBatch: options.maxBatch ?? 100,
      maxWaitMs: options.maxWaitMs ?? 60_000,
      waitTimeoutError: () => new WaitTimeout('waited too long'),
      runBatch,
    });
  }

  it('should run a request for an idle key at once, alone, and batch the requests that arrive meanwhile in order', async () => {
    const { batches, runBatch } = controllableRunner();
    const q = queue(runBatch);

    const first = q.submit('m', 1);
    expect(batches.map((b) => b.requests)).toEqual([[1]]);
    const later = [2, 3, 4].map((n) => q.submit('m', n));
    await flush();
    expect(batches).toHaveLength(1);

    batches[0]!.finish();
    await expect(first).resolves.toBe('m:1');
    await flush();
    expect(batches.map((b) => b.requests)).toEqual([[1], [2, 3, 4]]);
    batches[1]!.finish();
    await expect(Promise.all(later)).resolves.toEqual(['m:2', 'm:3', 'm:4']);
    expect(q.activeKeys).toBe(0);
  });

  it('should run different keys independently', () => {
    const { batches, runBatch } = controllableRunner();
    const q = queue(runBatch);
    void q.submit('a', 1);
    void q.submit('b', 2);
    expect(batches.map((b) => [b.key, b.requests])).toEqual([
      ['a', [1]],
      ['b', [2]],
    ]);
  });

  it('should split a long queue into batches of at most maxBatch', async () => {
    const { batches, runBatch } = controllableRunner();
    const q = queue(runBatch, { maxBatch: 2 });
    const all = [1, 2, 3, 4, 5].map((n) => q.submit('m', n));
    for (let i = 0; i < 3; i += 1) {
      await flush();
      batches[i]!.finish();
    }
    await expect(Promise.all(all)).resolves.toHaveLength(5);
    expect(batches.map((b) => b.requests)).toEqual([[1], [2, 3], [4, 5]]);
  });

  it("should settle each request with its own outcome, and fail a whole batch when the batch fails, then go on", async () => {
    const { batches, runBatch } = controllableRunner();
    const q = queue(runBatch);
    const first = q.submit('m', 1);
    const second = q.submit('m', 2);
    const third = q.submit('m', 3);
    const refused = new Error('refused');
    batches[0]!.fail(new Error('connection lost'));
    await expect(first).rejects.toThrow('connection lost');
    await flush();
    batches[1]!.finish([
      { ok: false, error: refused },
      { ok: true, value: 'booked' },
    ]);
    await expect(second).rejects.toBe(refused);
    await expect(third).resolves.toBe('booked');
  });

  it('should fail a request that waited longer than maxWaitMs instead of running it late', async () => {
    const { batches, runBatch } = controllableRunner();
    const q = queue(runBatch, { maxWaitMs: 20 });
    const first = q.submit('m', 1);
    const late = q.submit('m', 2);
    await new Promise((resolve) => setTimeout(resolve, 40));
    const fresh = q.submit('m', 3);
    batches[0]!.finish();
    await expect(first).resolves.toBe('m:1');
    await expect(late).rejects.toBeInstanceOf(WaitTimeout);
    await flush();
    expect(batches.map((b) => b.requests)).toEqual([[1], [3]]);
    batches[1]!.finish();
    await expect(fresh).resolves.toBe('m:3');
  });

  it('should reject a request that its batch left unsettled', async () => {
    const { batches, runBatch } = controllableRunner();
    const q = queue(runBatch);
    void q.submit('m', 1);
    const second = q.submit('m', 2);
    const third = q.submit('m', 3);
    batches[0]!.finish();
    await flush();
    batches[1]!.finish([{ ok: true, value: 'only one' }]);
    await expect(second).resolves.toBe('only one');
    await expect(third).rejects.toThrow('The batch settled 1 of 2 requests');
  });
});
