import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Fails with what to do when the haproxy binary is missing (tests that need it never skip). */
export function requireHaproxy(): void {
  const probe = spawnSync('haproxy', ['-v'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error(
      'haproxy is not installed (not found on the PATH), and this test needs it: install the Debian package ' +
        '(apt-get update && apt-get install -y haproxy; .ci/run does this)',
    );
  }
}

export interface HaproxyChild {
  child: ChildProcess;
  /** Everything haproxy printed so far. */
  output(): string;
  /** Kills haproxy and waits for it to exit. */
  stop(): Promise<void>;
}

/** Writes `config` to `dir`/haproxy.cfg and runs haproxy in the foreground with it. */
export async function spawnHaproxy(dir: string, config: string): Promise<HaproxyChild> {
  requireHaproxy();
  const configFile = path.join(dir, 'haproxy.cfg');
  await writeFile(configFile, config);
  const child = spawn('haproxy', ['-f', configFile, '-db'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    output: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
