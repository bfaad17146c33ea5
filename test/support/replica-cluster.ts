import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { chown, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Client } from 'pg';
import { freePort } from './ports';

const execFileAsync = promisify(execFile);

export interface ReplicaCluster {
  primaryUrl: string;
  replicaUrl: string;
  /** Runs one statement on the replica, as an operator would (pg_wal_replay_pause(), ...). */
  onReplica(sql: string): Promise<void>;
  /** SIGKILL to the replica's postmaster. */
  killReplica(): void;
  stop(): Promise<void>;
}

/** The newest PostgreSQL of the machine's packages that has pg_basebackup (the embedded one has none). */
function postgresBinaries(): string {
  const root = '/usr/lib/postgresql';
  const versions = existsSync(root) ? readdirSync(root).filter((version) => existsSync(path.join(root, version, 'bin', 'pg_basebackup'))) : [];
  const newest = versions.sort((a, b) => Number(b) - Number(a))[0];
  if (!newest) throw new Error(`No PostgreSQL with pg_basebackup under ${root}: install the Debian package postgresql`);
  return path.join(root, newest, 'bin');
}

/**
 * A primary and a streaming replica of its own, made the way an operator does (initdb,
 * pg_basebackup -R), each on a free port of 127.0.0.1, from the machine's PostgreSQL binaries.
 * As root they run as the postgres OS user.
 */
export async function startReplicaCluster(database: string): Promise<ReplicaCluster> {
  const bin = postgresBinaries();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'match-booking-replica-'));
  const asRoot = process.getuid?.() === 0;
  const user = asRoot
    ? { uid: Number((await execFileAsync('id', ['-u', 'postgres'])).stdout), gid: Number((await execFileAsync('id', ['-g', 'postgres'])).stdout) }
    : undefined;
  if (user) await chown(dir, user.uid, user.gid);
  const run = (tool: string, args: string[]) => execFileAsync(path.join(bin, tool), args, { ...(user ?? {}), cwd: dir, env: { ...process.env, LC_ALL: 'C' } });
  const primaryDir = path.join(dir, 'primary');
  const replicaDir = path.join(dir, 'replica');
  const [primaryPort, replicaPort] = [await freePort(), await freePort()];
  const start = (dataDir: string, port: number) =>
    run('pg_ctl', ['start', '-D', dataDir, '-w', '-t', '30', '-l', path.join(dataDir, 'server.log'), '-o', `-p ${port} -c listen_addresses=127.0.0.1 -k ${dataDir}`]);
  const stopServer = (dataDir: string) => run('pg_ctl', ['stop', '-D', dataDir, '-m', 'immediate', '-w']).catch(() => undefined);

  await run('initdb', ['-D', primaryDir, '-U', 'postgres', '--auth=trust', '--encoding=UTF8', '--locale=C']);
  await start(primaryDir, primaryPort);
  const primaryServer = `postgres://postgres@127.0.0.1:${primaryPort}`;
  const admin = new Client({ connectionString: `${primaryServer}/postgres` });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
  await admin.end();
  await run('pg_basebackup', ['-h', '127.0.0.1', '-p', String(primaryPort), '-U', 'postgres', '-D', replicaDir, '-R', '-X', 'stream', '--checkpoint=fast']);
  await start(replicaDir, replicaPort);

  const replicaUrl = `postgres://postgres@127.0.0.1:${replicaPort}/${database}`;
  return {
    primaryUrl: `${primaryServer}/${database}`,
    replicaUrl,
    onReplica: async (sql) => {
      const client = new Client({ connectionString: replicaUrl });
      await client.connect();
      try {
        await client.query(sql);
      } finally {
        await client.end();
      }
    },
    killReplica: () => {
      const pid = Number(readFileSync(path.join(replicaDir, 'postmaster.pid'), 'utf8').split('\n')[0]);
      process.kill(pid, 'SIGKILL');
    },
    stop: async () => {
      await stopServer(replicaDir);
      await stopServer(primaryDir);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
