import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { freePort } from './ports';

export interface Pgbouncer {
  port: number;
  /** `url` (a database on the server PgBouncer fronts) as reached through PgBouncer. */
  route(url: string): string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * A real PgBouncer (Debian's package) in transaction pooling mode in front of the PostgreSQL
 * server of `serverUrl`, for every database on it, with PgBouncer's strict defaults: no
 * unknown startup parameters, no prepared statements across transactions. PgBouncer refuses
 * to run as root, so as root it runs as the postgres OS user.
 */
export async function startPgbouncer(serverUrl: string, { poolSize = 20 }: { poolSize?: number } = {}): Promise<Pgbouncer> {
  const probe = spawnSync('pgbouncer', ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) {
    throw new Error('pgbouncer is not installed, and this test needs it: install the Debian package (apt-get update && apt-get install -y pgbouncer; .ci/run does this)');
  }
  const server = new URL(serverUrl);
  const port = await freePort();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'match-booking-pgbouncer-'));
  const runAs = process.getuid?.() === 0 ? { uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })), gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })) } : undefined;
  const config = path.join(dir, 'pgbouncer.ini');
  writeFileSync(
    config,
    `[databases]
* = host=${server.hostname} port=${server.port || 5432} user=${decodeURIComponent(server.username) || 'postgres'}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = ${port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = ${poolSize}
max_client_conn = 1000
server_check_delay = 0
`,
  );
  if (runAs) {
    chownSync(dir, runAs.uid, runAs.gid);
    chownSync(config, runAs.uid, runAs.gid);
  }
  const child: ChildProcess = spawn('pgbouncer', [config], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, ...(runAs ?? {}) });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const route = (url: string): string => {
    const routed = new URL(url);
    routed.hostname = '127.0.0.1';
    routed.port = String(port);
    return routed.toString();
  };
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };

  const deadline = Date.now() + 10_000;
  for (;;) {
    const client = new Client({ connectionString: route(serverUrl) });
    try {
      await client.connect();
      await client.query('SELECT 1');
      await client.end();
      return { port, route, output: () => output, stop };
    } catch (error) {
      await client.end().catch(() => undefined);
      if (child.exitCode !== null || Date.now() > deadline) {
        await stop();
        throw new Error(`pgbouncer did not start: ${error instanceof Error ? error.message : String(error)}\n${output}`, { cause: error });
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}
