import { Logger } from '@nestjs/common';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { promisify } from 'node:util';
import Redis from 'ioredis';
import { createRedisClient } from '../../src/redis/redis.module';
import { type LockHandle, LockService, LockUnavailableError } from '../../src/locks/lock.service';
import { Metrics } from '../../src/observability/metrics';
import { type DedicatedRedis, sharedRedisUrl, startDedicatedRedis } from '../support/redis-server';

const execFileAsync = promisify(execFile);
const quietLogger = new Logger('test');
const config = (url: string) => ({ redis: { url, commandTimeoutMs: 300, lockClockToleranceMs: 200 } });

/** The Redis lock against a real Redis: ownership tokens, atomic TTL, fencing, and failures that are logged, not thrown. */
describe('LockService', () => {
  let redis: Redis;
  let inspector: Redis;
  let metrics: Metrics;
  let locks: LockService;
  const name = () => `test-${randomBytes(6).toString('hex')}`;

  beforeAll(async () => {
    redis = createRedisClient(sharedRedisUrl(), 300, quietLogger);
    inspector = new Redis(sharedRedisUrl());
    await Promise.all([new Promise((resolve) => redis.once('ready', resolve)), inspector.ping()]);
  });
  beforeEach(() => {
    metrics = new Metrics();
    locks = new LockService(redis, metrics, config(sharedRedisUrl()));
  });
  afterAll(async () => {
    await redis.quit();
    await inspector.quit();
  });

  it('should store its own random token with the TTL set atomically, and release with that same token', async () => {
    const key = name();
    const handle = await locks.acquire(key, { ttlMs: 5_000 });
    const pttl = await inspector.pttl(`lock:${key}`);

    expect(handle).not.toBeNull();
    expect(await inspector.get(`lock:${key}`)).toBe(handle!.token);
    expect(pttl).toBeGreaterThan(0);
    expect(pttl).toBeLessThanOrEqual(5_000);
    await expect(locks.release(handle!)).resolves.toBe(true);
    expect(await inspector.exists(`lock:${key}`)).toBe(0);
  });

  it('should use a fresh token for every acquisition and a fencing token that only grows', async () => {
    const key = name();
    const first = (await locks.acquire(key, { ttlMs: 5_000 }))!;
    await locks.release(first);
    const second = (await locks.acquire(key, { ttlMs: 5_000 }))!;

    expect(second.token).not.toBe(first.token);
    expect(second.fencingToken).toBeGreaterThan(first.fencingToken);
    await locks.release(second);
  });

  it('should never let a failed acquirer delete the holder’s lock', async () => {
    const key = name();
    const holder = (await locks.acquire(key, { ttlMs: 5_000 }))!;
    const contender = new LockService(redis, metrics, config(sharedRedisUrl()));

    await expect(contender.acquire(key, { ttlMs: 5_000, retries: 2, retryBaseDelayMs: 5 })).resolves.toBeNull();
    await expect(contender.withLock(key, { ttlMs: 5_000 }, () => Promise.resolve('ran'))).resolves.toBeNull();

    expect(await inspector.get(`lock:${key}`)).toBe(holder.token);
    await locks.release(holder);
  });

  it('should make releasing a lock it does not own a logged no-op', async () => {
    const key = name();
    const holder = (await locks.acquire(key, { ttlMs: 5_000 }))!;
    const forged: LockHandle = { ...holder, token: 'not-the-owner' };
    const warn = jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);

    await expect(locks.release(forged)).resolves.toBe(false);

    expect(await inspector.get(`lock:${key}`)).toBe(holder.token);
    expect(warn).toHaveBeenCalledWith(expect.stringContaining(`Lock "${key}" was no longer ours`));
    expect((await metrics.lockReleaseFailures.get()).values).toEqual([expect.objectContaining({ labels: { reason: 'not_owner' }, value: 1 })]);
    warn.mockRestore();
    await locks.release(holder);
  });

  it('should not delete a lock that expired and was taken over by someone else', async () => {
    const key = name();
    const expired = (await locks.acquire(key, { ttlMs: 50 }))!;
    await new Promise((resolve) => setTimeout(resolve, 80));
    const newOwner = (await locks.acquire(key, { ttlMs: 5_000 }))!;
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);

    await expect(locks.release(expired)).resolves.toBe(false);
    await expect(locks.extend(expired)).resolves.toBe(false);

    expect(await inspector.get(`lock:${key}`)).toBe(newOwner.token);
    await locks.release(newOwner);
  });

  it('should extend only its own lock', async () => {
    const key = name();
    const handle = (await locks.acquire(key, { ttlMs: 200 }))!;
    await expect(locks.extend(handle, 5_000)).resolves.toBe(true);
    expect(await inspector.pttl(`lock:${key}`)).toBeGreaterThan(1_000);
    await locks.release(handle);
  });

  it('should keep extending while the work runs, and return the work’s result', async () => {
    const key = name();
    const outcome = await locks.withLock(key, { ttlMs: 150 }, async (signal) => {
      await new Promise((resolve) => setTimeout(resolve, 400)); // longer than the TTL
      return { stillOwned: !signal.aborted, value: await inspector.exists(`lock:${key}`) };
    });
    expect(outcome).toEqual({ result: { stillOwned: true, value: 1 } });
    expect(await inspector.exists(`lock:${key}`)).toBe(0);
  });

  it('should tell the work when ownership is lost', async () => {
    const key = name();
    jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    const outcome = await locks.withLock(key, { ttlMs: 150 }, async (signal) => {
      await inspector.set(`lock:${key}`, 'stolen', 'PX', 5_000); // someone took it over
      await new Promise((resolve) => setTimeout(resolve, 120));
      return signal.aborted;
    });
    expect(outcome).toEqual({ result: true });
    expect(await inspector.get(`lock:${key}`)).toBe('stolen'); // the release deleted nothing
    await inspector.del(`lock:${key}`);
  });

  it('should rethrow the work’s error, not a release error', async () => {
    const key = name();
    const failure = new Error('work failed');
    await expect(locks.withLock(key, { ttlMs: 5_000 }, () => Promise.reject(failure))).rejects.toBe(failure);
    expect(await inspector.exists(`lock:${key}`)).toBe(0);
  });

  it('should let at most one of two processes hold the lock at any time', async () => {
    const key = name();
    const contender = path.resolve(__dirname, '..', 'support', 'lock-contender.ts');
    const tsx = path.resolve(__dirname, '..', '..', 'node_modules', '.bin', 'tsx');
    const run = () => execFileAsync(tsx, [contender, sharedRedisUrl(), key, '40'], { timeout: 60_000 });

    const [a, b] = await Promise.all([run(), run()]);

    expect(Number(a.stdout.trim())).toBe(40);
    expect(Number(b.stdout.trim())).toBe(40);
    expect(await inspector.get(`${key}:violations`)).toBeNull();
    await inspector.del(`${key}:holders`);
  });

  describe('when Redis fails', () => {
    let dedicated: DedicatedRedis;
    let client: Redis;
    beforeEach(async () => {
      dedicated = await startDedicatedRedis();
      client = createRedisClient(dedicated.url, 300, quietLogger);
      await new Promise((resolve) => client.once('ready', resolve));
      jest.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
    });
    afterEach(async () => {
      client.disconnect();
      await dedicated.stop();
    });

    it('should log, count and not throw a release that cannot reach Redis, and the key expires by itself', async () => {
      const service = new LockService(client, metrics, config(dedicated.url));
      const handle = (await service.acquire('unreachable', { ttlMs: 300 }))!;
      const direct = new Redis(dedicated.url);
      const error = jest.spyOn(Logger.prototype, 'error').mockImplementation(() => undefined);
      client.disconnect(false); // the service's connection is gone
      try {
        await expect(service.release(handle)).resolves.toBe(false);

        expect(error).toHaveBeenCalledWith(expect.stringMatching(/Releasing lock "unreachable" failed \(connection\).*expires by itself in \d+ ms/));
        expect((await metrics.lockReleaseFailures.get()).values).toEqual([expect.objectContaining({ labels: { reason: 'connection' }, value: 1 })]);
        expect(await direct.get('lock:unreachable')).toBe(handle.token);
        await new Promise((resolve) => setTimeout(resolve, 350));
        expect(await direct.exists('lock:unreachable')).toBe(0);
      } finally {
        direct.disconnect();
      }
    });

    it('should not take a lock with a request it gave up on while Redis was paused', async () => {
      const service = new LockService(client, metrics, config(dedicated.url));
      dedicated.pause();
      await expect(service.acquire('paused', { ttlMs: 10_000 })).rejects.toBeInstanceOf(LockUnavailableError);
      await new Promise((resolve) => setTimeout(resolve, 800)); // past the command timeout + clock tolerance
      dedicated.resume();

      const direct = new Redis(dedicated.url);
      try {
        await new Promise((resolve) => setTimeout(resolve, 200)); // Redis has now run what was waiting in its socket
        expect(await direct.exists('lock:paused')).toBe(0);
      } finally {
        direct.disconnect();
      }
    });
  });
});
