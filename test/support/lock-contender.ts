/**
 * One of the processes of the lock contention test (test/integration/lock-service.spec.ts).
 * Run with tsx: contender <redis url> <lock name> <rounds>. While it holds the lock it
 * increments a shared counter of holders and records a violation if anyone else holds it too.
 */
import { Logger } from '@nestjs/common';
import Redis from 'ioredis';
import { LockService } from '../../src/locks/lock.service';
import { Metrics } from '../../src/observability/metrics';

async function main(): Promise<void> {
  const [url, name, roundsArg] = process.argv.slice(2);
  if (!url || !name || !roundsArg) throw new Error('usage: lock-contender <redis url> <lock name> <rounds>');
  Logger.overrideLogger(false);
  const redis = new Redis(url, { enableOfflineQueue: false, autoResendUnfulfilledCommands: false, maxRetriesPerRequest: 1 });
  await new Promise((resolve) => redis.once('ready', resolve));
  const locks = new LockService(redis, new Metrics(), { redis: { commandTimeoutMs: 1_000, lockClockToleranceMs: 500 } });
  let held = 0;
  for (let round = 0; round < Number(roundsArg); round += 1) {
    const outcome = await locks.withLock(name, { ttlMs: 2_000, retries: 200, retryBaseDelayMs: 2, retryMaxDelayMs: 20 }, async () => {
      const holders = await redis.incr(`${name}:holders`);
      if (holders !== 1) await redis.incr(`${name}:violations`);
      await new Promise((resolve) => setTimeout(resolve, 3));
      await redis.decr(`${name}:holders`);
    });
    if (outcome) held += 1;
  }
  process.stdout.write(`${held}\n`);
  redis.disconnect();
}

main().catch((error: unknown) => {
  process.stderr.write(`${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exit(1);
});
