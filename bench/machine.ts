import { execFile } from 'node:child_process';
import os from 'node:os';
import { promisify } from 'node:util';
import type { Pool } from 'pg';
import autocannonPackage from 'autocannon/package.json';

const execFileAsync = promisify(execFile);

export interface MachineDescription {
  cpuModel: string;
  cpuCount: number;
  totalMemoryBytes: number;
  os: string;
  node: string;
  postgresServer: string;
  /** `pgbench --version`, or null when pgbench is not on the PATH. */
  pgbench: string | null;
  /** The HTTP load generator, e.g. "autocannon 9.0.0". */
  loadGenerator: string;
}

export interface GitDescription {
  /** Short commit hash, or null outside a git checkout. */
  commit: string | null;
  /** Uncommitted changes were present: the numbers may not belong to `commit` alone. */
  dirty: boolean;
}

export async function describeMachine(db: Pool, pgbenchVersion: string | null): Promise<MachineDescription> {
  const cpus = os.cpus();
  const { rows } = await db.query<{ server_version: string }>('SHOW server_version');
  return {
    cpuModel: cpus[0]?.model.trim() ?? 'unknown',
    cpuCount: cpus.length,
    totalMemoryBytes: os.totalmem(),
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    postgresServer: rows[0]?.server_version ?? 'unknown',
    pgbench: pgbenchVersion,
    loadGenerator: `autocannon ${autocannonPackage.version}`,
  };
}

export async function describeGit(): Promise<GitDescription> {
  try {
    const [{ stdout: commit }, { stdout: status }] = await Promise.all([
      execFileAsync('git', ['rev-parse', '--short', 'HEAD']),
      execFileAsync('git', ['status', '--porcelain']),
    ]);
    return { commit: commit.trim(), dirty: status.trim().length > 0 };
  } catch {
    // Not a git checkout (e.g. an unpacked tarball): the report says so instead of failing the run.
    return { commit: null, dirty: false };
  }
}
