import { type ChildProcess, spawn } from 'node:child_process';
import Redis from 'ioredis';
import { freePort } from './ports';

/** The shared Redis of the run (REDIS_URL, else the machine's), for tests that do not disturb it. */
export function sharedRedisUrl(): string {
  return process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
}

export interface DedicatedRedis {
  url: string;
  port: number;
  process: ChildProcess;
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

/**
 * A redis-server of the test's own, for tests that pause, stop or restart Redis without
 * disturbing the other test files running in parallel. `extraArgs` go to redis-server as they
 * are (for example --replicaof host port).
 */
export async function startDedicatedRedis(port?: number, extraArgs: string[] = []): Promise<DedicatedRedis> {
  const listenPort = port ?? (await freePort());
  const child = spawn('redis-server', ['--port', String(listenPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', ...extraArgs], {
    stdio: 'ignore',
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = `redis://127.0.0.1:${listenPort}`;
  const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await probe.connect();
      await probe.ping();
      break;
    } catch (error) {
      probe.disconnect();
      if (Date.now() > deadline) throw new Error(`redis-server did not start on port ${listenPort}`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
  probe.disconnect();
  return {
    url,
    port: listenPort,
    process: child,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    stop: async () => {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    },
  };
}
