import { CoalescingQueue, RUSH_SIZE, type Settled } from './coalescing-queue';

class WaitTimeout extends Error {}

type Request = { key: string; n: number };

/** A runBatch whose batches finish only when the test says so, recording what each batch held. */
function controllableRunner() {
  const batches: Array<{ requests: Request[]; finish: (outcomes?: Array<Settled<string>>) => void; fail: (error: Error) => void }> = [];
  const runBatch = (requests: Request[]) =>
    new Promise<Array<Settled<string>>>((resolve, reject) => {
      batches.push({
        requests,
        finish: (outcomes) => resolve(outcomes ?? requests.map((r) => ({ ok: true, value: `${r.key}:${r.n}` }))),
        fail: reject,
      });
    });
  const contents = () => batches.map((batch) => batch.requests.map((r) => `${r.key}:${r.n}`));
  return { batches, runBatch, contents };
}

const flush = () => new Promise((resolve) => setImmediate(resolve));

describe('CoalescingQueue', () => {
  function queue(runBatch: (requests: Request[]) => Promise<Array<Settled<string>>>, options: { maxBatch?: number; maxConcurrentBatches?: number; maxWaitMs?: number; stalledAfterMs?: number } = {}) {
    const q = new CoalescingQueue<Request, string>({
      maxBatch: options.maxBatch ?? 100,
      maxConcurrentBatches: options.maxConcurrentBatches ?? 1,
      stalledAfterMs: options.stalledAfterMs ?? 60_000,
      maxWaitMs: options.maxWaitMs ?? 60_000,
      waitTimeoutError: () => new WaitTimeout('waited too long'),
      runBatch,
      spans: { name: 'test', keyAttribute: 'test.key', keysAttribute: 'test.batch.keys' },
    });
    return { q, submit: (key: string, n: number) => q.submit(key, { key, n }) };
  }

  it('should run a request at once, alone, when nothing runs, and batch the requests that arrive meanwhile, in order', async () => {
    const { batches, runBatch, contents } = controllableRunner();
    const { q, submit } = queue(runBatch);

    const first = submit('m', 1);
    expect(contents()).toEqual([['m:1']]);
    const later = [submit('a', 2), submit('m', 3), submit('b', 4)];
    await flush();
    expect(batches).toHaveLength(1);

    batches[0]!.finish();
    await expect(first).resolves.toBe('m:1');
    expect(contents()).toEqual([['m:1'], ['a:2', 'm:3', 'b:4']]);
    batches[1]!.finish();
    await expect(Promise.all(later)).resolves.toEqual(['a:2', 'm:3', 'b:4']);
    expect(q.waitingRequests).toBe(0);
  });

  it('should say when it is idle: no request waiting and no batch running', async () => {
    const { batches, runBatch } = controllableRunner();
    const { q, submit } = queue(runBatch);
    await expect(q.whenIdle()).resolves.toBeUndefined();

    const requests = [submit('m', 1), submit('a', 2), submit('b', 3)];
    let idle = false;
    void q.whenIdle().then(() => (idle = true));
    batches[0]!.finish();
    await flush();
    expect(batches).toHaveLength(2);
    expect(idle).toBe(false);

    batches[1]!.finish();
    await Promise.all(requests);
    await flush();
    expect(idle).toBe(true);
  });

  it('should run up to maxConcurrentBatches batches at once, never two with the same key', async () => {
    const { batches, runBatch, contents } = controllableRunner();
    const { submit } = queue(runBatch, { maxConcurrentBatches: 3 });
    void submit('hot', 1);
    void submit('hot', 2);
    void submit('a', 3);
    void submit('hot', 4);
    void submit('b', 5);
    // 'hot' runs in the first batch, so its next requests wait; the others start batches of their own.
    expect(contents()).toEqual([['hot:1'], ['a:3'], ['b:5']]);
    batches[1]!.finish();
    await flush();
    expect(contents()).toHaveLength(3);
    batches[0]!.finish();
    await flush();
    expect(contents()[3]).toEqual(['hot:2', 'hot:4']);
  });

  it('should give a key with RUSH_SIZE requests waiting a batch of its own, then batch the others', async () => {
    const { batches, runBatch, contents } = controllableRunner();
    const { submit } = queue(runBatch);
    void submit('x', 1);
    const hot = Array.from({ length: RUSH_SIZE }, (_, i) => submit('hot', 10 + i));
    const others = [submit('a', 2), submit('b', 3), submit('b', 4)];
    batches[0]!.finish();
    await flush();
    expect(contents()[1]).toEqual(hot.map((_, i) => `hot:${10 + i}`));
    batches[1]!.finish();
    await flush();
    expect(contents()[2]).toEqual(['a:2', 'b:3', 'b:4']);
    batches[2]!.finish();
    await expect(Promise.all([...hot, ...others])).resolves.toHaveLength(RUSH_SIZE + 3);
  });

  it('should start a rush on one key at once, outside the limit on running batches', async () => {
    const { batches, runBatch, contents } = controllableRunner();
    const { submit } = queue(runBatch, { maxConcurrentBatches: 1 });
    void submit('x', 1);
    void submit('a', 2);
    const hot = Array.from({ length: RUSH_SIZE }, (_, i) => submit('hot', 10 + i));
    await flush();
    // 'x' takes the one ordinary slot; 'a' waits for it, but the rush on 'hot' does not.
    expect(contents()).toEqual([['x:1'], hot.map((_, i) => `hot:${10 + i}`)]);
    batches[1]!.finish();
    await expect(Promise.all(hot)).resolves.toHaveLength(RUSH_SIZE);
    batches[0]!.finish();
    await flush();
    expect(contents()[2]).toEqual(['a:2']);
  });

  it('should start another batch when every running batch has stalled, one per stall period', async () => {
    const { batches, runBatch, contents } = controllableRunner();
    const { submit } = queue(runBatch, { stalledAfterMs: 30 });
    void submit('stuck', 1);
    const other = submit('a', 2);
    void submit('b', 3);
    await flush();
    expect(contents()).toEqual([['stuck:1']]);
    await new Promise((resolve) => setTimeout(resolve, 45));
    // The stalled batch still runs; the waiting requests got a batch of their own.
    expect(contents()).toEqual([['stuck:1'], ['a:2', 'b:3']]);
    batches[1]!.finish();
    await expect(other).resolves.toBe('a:2');
    batches[0]!.finish();
  });

  it('should split a long queue into batches of at most maxBatch', async () => {
    const { batches, runBatch, contents } = controllableRunner();
    const { submit } = queue(runBatch, { maxBatch: 2 });
    const all = [1, 2, 3, 4, 5].map((n) => submit(`k${n}`, n));
    for (let i = 0; i < 3; i += 1) {
      batches[i]!.finish();
      await flush();
    }
    await expect(Promise.all(all)).resolves.toHaveLength(5);
    expect(contents()).toEqual([['k1:1'], ['k2:2', 'k3:3'], ['k4:4', 'k5:5']]);
  });

  it('should settle each request with its own outcome, and fail a whole batch when the batch fails, then go on', async () => {
    const { batches, runBatch } = controllableRunner();
    const { submit } = queue(runBatch);
    const first = submit('m', 1);
    const second = submit('m', 2);
    const third = submit('n', 3);
    const refused = new Error('refused');
    batches[0]!.fail(new Error('connection lost'));
    await expect(first).rejects.toThrow('connection lost');
    batches[1]!.finish([
      { ok: false, error: refused },
      { ok: true, value: 'booked' },
    ]);
    await expect(second).rejects.toBe(refused);
    await expect(third).resolves.toBe('booked');
  });

  it('should fail a request that waited longer than maxWaitMs instead of running it late', async () => {
    const { batches, runBatch, contents } = controllableRunner();
    const { submit } = queue(runBatch, { maxWaitMs: 20 });
    const first = submit('m', 1);
    const late = submit('m', 2);
    await new Promise((resolve) => setTimeout(resolve, 40));
    const fresh = submit('m', 3);
    batches[0]!.finish();
    await expect(first).resolves.toBe('m:1');
    await expect(late).rejects.toBeInstanceOf(WaitTimeout);
    expect(contents()).toEqual([['m:1'], ['m:3']]);
    batches[1]!.finish();
    await expect(fresh).resolves.toBe('m:3');
  });

  it('should reject a request that its batch left unsettled', async () => {
    const { batches, runBatch } = controllableRunner();
    const { submit } = queue(runBatch);
    void submit('m', 1);
    const second = submit('a', 2);
    const third = submit('b', 3);
    batches[0]!.finish();
    await flush();
    batches[1]!.finish([{ ok: true, value: 'only one' }]);
    await expect(second).resolves.toBe('only one');
    await expect(third).rejects.toThrow('The batch settled 1 of 2 requests');
  });
});
