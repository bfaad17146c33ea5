import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { type HaproxyChild, spawnHaproxy } from './haproxy';
import { freePort } from './ports';

export interface PatroniNode {
  name: string;
  pgPort: number;
  apiPort: number;
  dataDir: string;
  patroni: ChildProcess;
}

export interface PatroniCluster {
  /** Through HAProxy, which routes to the node whose Patroni REST API answers 200 on /primary. */
  url(database: string): string;
  nodes: PatroniNode[];
  /** The node Patroni reports as the leader, or undefined while there is none. */
  leader(): Promise<PatroniNode | undefined>;
  /** kill -9 of the node's PostgreSQL postmaster, then of its Patroni. */
  killNode(node: PatroniNode): void;
  output(): string;
  stop(): Promise<void>;
}

/** Short enough for a test, long enough to be stable on two loaded cores: the leader key expires `ttl` s after its last renewal. */
export const PATRONI_TIMING = { ttl: 10, loopWait: 1, retryTimeout: 4 };

function binaries(): string {
  const root = '/usr/lib/postgresql';
  const version = existsSync(root) ? readdirSync(root).filter((v) => existsSync(path.join(root, v, 'bin', 'pg_ctl'))).sort((a, b) => Number(b) - Number(a))[0] : undefined;
  if (!version) throw new Error(`No PostgreSQL under ${root}: install the Debian package postgresql`);
  return path.join(root, version, 'bin');
}

function requireCommand(command: string, hint: string): void {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${command} is not installed, and this test needs it: ${hint}`);
  }
}

/**
 * A small production-shaped cluster on this machine: one etcd, two PostgreSQL nodes under
 * Patroni with synchronous_mode (a commit is acknowledged only once the standby has it), and
 * HAProxy sending connections to the leader by Patroni's REST check, as production setups do.
 */
export async function startPatroniCluster(nodeCount = 2): Promise<PatroniCluster> {
  requireCommand('patroni', 'apt-get install -y patroni etcd-server (.ci/run does this)');
  requireCommand('etcd', 'apt-get install -y etcd-server (.ci/run does this)');
  const bin = binaries();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'match-booking-patroni-'));
  const user = process.getuid?.() === 0 ? { uid: Number(execFileSync('id', ['-u', 'postgres'])), gid: Number(execFileSync('id', ['-g', 'postgres'])) } : undefined;
  if (user) chownSync(dir, user.uid, user.gid);
  let output = '';
  const capture = (label: string, child: ChildProcess) => {
    child.stdout?.on('data', (chunk: Buffer) => (output += `[${label}] ${chunk.toString()}`));
    child.stderr?.on('data', (chunk: Buffer) => (output += `[${label}] ${chunk.toString()}`));
  };

  const [clientPort, peerPort] = [await freePort(), await freePort()];
  const etcd = spawn(
    'etcd',
    [
      '--name', 'etcd-1', '--data-dir', path.join(dir, 'etcd'),
      '--listen-client-urls', `http://127.0.0.1:${clientPort}`, '--advertise-client-urls', `http://127.0.0.1:${clientPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `etcd-1=http://127.0.0.1:${peerPort}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  capture('etcd', etcd);

  const nodes: PatroniNode[] = [];
  for (let i = 1; i <= nodeCount; i += 1) {
    const name = `node-${i}`;
    const [pgPort, apiPort] = [await freePort(), await freePort()];
    const dataDir = path.join(dir, name);
    const socketDir = path.join(dir, `${name}-socket`);
    mkdirSync(socketDir);
    if (user) chownSync(socketDir, user.uid, user.gid);
    const config = path.join(dir, `${name}.yml`);
    writeFileSync(
      config,
      `scope: booking
name: ${name}
restapi:
  listen: 127.0.0.1:${apiPort}
  connect_address: 127.0.0.1:${apiPort}
etcd3:
  hosts: 127.0.0.1:${clientPort}
bootstrap:
  dcs:
    ttl: ${PATRONI_TIMING.ttl}
    loop_wait: ${PATRONI_TIMING.loopWait}
    retry_timeout: ${PATRONI_TIMING.retryTimeout}
    maximum_lag_on_failover: 1048576
    synchronous_mode: true
    postgresql:
      use_pg_rewind: false
      parameters:
        max_connections: 100
        wal_level: replica
        hot_standby: 'on'
        max_wal_senders: 10
        max_replication_slots: 10
  initdb:
    - encoding: UTF8
    - locale: C
  pg_hba:
    - local all all trust
    - host replication all 127.0.0.1/32 trust
    - host all all 127.0.0.1/32 trust
postgresql:
  listen: 127.0.0.1:${pgPort}
  connect_address: 127.0.0.1:${pgPort}
  data_dir: ${dataDir}
  bin_dir: ${bin}
  pgpass: ${path.join(dir, `${name}.pgpass`)}
  authentication:
    superuser:
      username: postgres
    replication:
      username: replicator
  parameters:
    unix_socket_directories: ${socketDir}
`,
    );
    if (user) chownSync(config, user.uid, user.gid);
    const patroni = spawn('patroni', [config], { stdio: ['ignore', 'pipe', 'pipe'], cwd: dir, ...(user ?? {}) });
    capture(name, patroni);
    nodes.push({ name, pgPort, apiPort, dataDir, patroni });
  }

  const haproxyPort = await freePort();
  const haproxy: HaproxyChild = await spawnHaproxy(
    dir,
    `
defaults
  mode tcp
  timeout connect 1s
  timeout client 30m
  timeout server 30m
  timeout check 1s

listen postgres
  bind 127.0.0.1:${haproxyPort}
  option httpchk
  http-check send meth GET uri /primary
  http-check expect status 200
  # A node that stops being the primary loses its sessions at once.
  default-server inter 500ms fall 2 rise 1 on-marked-down shutdown-sessions
${nodes.map((node) => `  server ${node.name} 127.0.0.1:${node.pgPort} check port ${node.apiPort}`).join('\n')}
`,
  );

  const status = async (node: PatroniNode): Promise<{ role?: string; state?: string; replication_state?: string } | undefined> => {
    try {
      const response = await fetch(`http://127.0.0.1:${node.apiPort}/patroni`, { signal: AbortSignal.timeout(1_000) });
      return (await response.json()) as { role?: string; state?: string };
    } catch {
      return undefined;
    }
  };
  const cluster: PatroniCluster = {
    url: (database) => `postgres://postgres@127.0.0.1:${haproxyPort}/${database}`,
    nodes,
    leader: async () => {
      for (const node of nodes) {
        if (node.patroni.exitCode !== null || node.patroni.signalCode !== null) continue;
        const state = await status(node);
        if ((state?.role === 'master' || state?.role === 'primary') && state.state === 'running') return node;
      }
      return undefined;
    },
    killNode: (node) => {
      const pidFile = path.join(node.dataDir, 'postmaster.pid');
      if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 'SIGKILL');
      node.patroni.kill('SIGKILL');
    },
    output: () => `${output}\n[haproxy] ${haproxy.output()}`,
    stop: async () => {
      for (const node of nodes) {
        node.patroni.kill('SIGKILL');
        const pidFile = path.join(node.dataDir, 'postmaster.pid');
        try {
          if (existsSync(pidFile)) process.kill(Number(readFileSync(pidFile, 'utf8').split('\n')[0]), 'SIGKILL');
        } catch {
          // already gone
        }
      }
      etcd.kill('SIGKILL');
      await haproxy.stop();
      await new Promise((resolve) => setTimeout(resolve, 200));
      rmSync(dir, { recursive: true, force: true });
    },
  };

  // A leader, and a streaming synchronous standby for every other node.
  const deadline = Date.now() + 90_000;
  for (;;) {
    const states = await Promise.all(nodes.map((node) => status(node)));
    const leaders = states.filter((state) => (state?.role === 'master' || state?.role === 'primary') && state.state === 'running');
    const standbys = states.filter((state) => state?.role === 'replica' && state.state === 'running');
    if (leaders.length === 1 && standbys.length === nodes.length - 1) {
      const sync = await fetch(`http://127.0.0.1:${nodes[0]!.apiPort}/cluster`).then((r) => r.json() as Promise<{ members: Array<{ role: string }> }>).catch(() => undefined);
      if (sync?.members.some((member) => member.role === 'sync_standby')) return cluster;
    }
    if (Date.now() > deadline) {
      const log = cluster.output();
      await cluster.stop();
      throw new Error(`The Patroni cluster did not come up:\n${log.slice(-6000)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
