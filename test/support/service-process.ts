import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { freePort } from './ports';
import { QUIET_WEBHOOKS } from './quiet-webhooks';
import { GENEROUS_RATE_LIMITS } from './rate-limits';

const MAIN = path.resolve(__dirname, '..', '..', 'dist', 'src', 'main.js');

export interface ServiceProcess {
  port: number;
  baseUrl: string;
  child: ChildProcess;
  /** Everything the process printed so far. */
  output(): string;
  /** Resolves when the process exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ServiceProcessOptions {
  /** Its own process group (its pid is the group id), so a test can signal the group as an orchestrator does. */
  detached?: boolean;
}

/**
 * Starts the built service (dist/, made by `npm run build`, which `npm test` runs first) as a
 * child process, the way it runs in production, and waits until /health/ready answers 200.
 * `env` is its whole configuration on top of NODE_ENV=test, a free PORT, GENEROUS_RATE_LIMITS and QUIET_WEBHOOKS.
 */
export async function startServiceProcess(env: Record<string, string>, readyTimeoutMs = 30_000, options: ServiceProcessOptions = {}): Promise<ServiceProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" first (npm test does)`);
  const port = await freePort();
  const child = spawn(process.execPath, [MAIN], {
    env: serviceEnvironment(port, env),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  const service: ServiceProcess = { port, baseUrl: `http://127.0.0.1:${port}`, child, output: () => output, exited };

  const deadline = Date.now() + readyTimeoutMs;
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  while (Date.now() < deadline && !exitedEarly) {
    try {
      const response = await fetch(`${service.baseUrl}/health/ready`, { signal: AbortSignal.timeout(1_000) });
      if (response.status === 200) return service;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`The service did not become ready on port ${port}:\n${output}`);
}

function serviceEnvironment(port: number, env: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '', NODE_ENV: 'test', HOST: '127.0.0.1', PORT: String(port), ...GENEROUS_RATE_LIMITS, ...QUIET_WEBHOOKS, ...env };
}

/** Runs the built service with `env` until it exits by itself (a refused configuration, say); kills it after `timeoutMs`. */
export async function runServiceProcessToExit(env: Record<string, string>, timeoutMs = 20_000): Promise<{ code: number | null; output: string }> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run "npm run build" first (npm test does)`);
  const child = spawn(process.execPath, [MAIN], { env: serviceEnvironment(await freePort(), env), stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (exitCode) => resolve(exitCode)));
  clearTimeout(timer);
  return { code, output };
}

/** Kills the process if it still runs and waits for it to exit. */
export async function stopServiceProcess(service: ServiceProcess): Promise<void> {
  if (service.child.exitCode === null && service.child.signalCode === null) service.child.kill('SIGKILL');
  await service.exited;
}
