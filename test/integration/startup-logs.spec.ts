import { spawn } from 'node:child_process';
import path from 'node:path';
import { freePort } from '../support/ports';

const MAIN = path.resolve(__dirname, '..', '..', 'dist', 'src', 'main.js');
const SECRET = 'a-production-secret-of-at-least-32-chars';

/** Runs the built service until it exits, with stdout and stderr captured as they would be by a log pipeline (not a terminal). */
function runUntilExit(env: Record<string, string>): Promise<{ code: number | null; lines: string[] }> {
  const child = spawn(process.execPath, [MAIN], { env: { PATH: process.env.PATH ?? '', HOST: '127.0.0.1', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, lines: output.split('\n').filter((line) => line.length > 0) });
    }),
  );
}

function parsedLines(lines: string[]): Array<{ level: number; msg: string; context?: string }> {
  for (const line of lines) expect(line).not.toContain('\u001b[');
  return lines.map((line) => {
    try {
      return JSON.parse(line) as { level: number; msg: string; context?: string };
    } catch {
      throw new Error(`not a JSON line: ${line}`);
    }
  });
}

/** A log pipeline must get JSON lines from the first line to the last, above all when the start fails. */
describe('the logs of a failed start', () => {
  let unreachable: string;
  beforeAll(async () => {
    // A port that was free a moment ago: nothing listens there.
    unreachable = `postgres://postgres@127.0.0.1:${await freePort()}/booking`;
  });

  it('should be JSON lines only, ending with the fatal error, when the database refuses the first connection', async () => {
    const { code, lines } = await runUntilExit({ NODE_ENV: 'production', AUTH_JWT_SECRET: SECRET, DATABASE_URL: unreachable, PORT: String(await freePort()) });

    expect(code).toBe(1);
    const entries = parsedLines(lines);
    // Nest's own lines (module initialisation, its exception handler) are among them, as JSON.
    expect(entries.some((entry) => entry.context === 'InstanceLoader')).toBe(true);
    expect(entries.at(-1)).toMatchObject({ level: 60, msg: 'The service failed to start' });
    expect(lines.at(-1)).toContain('ECONNREFUSED');
  });

  it('should be JSON lines only when the migrations at startup cannot reach the database', async () => {
    const { code, lines } = await runUntilExit({
      NODE_ENV: 'production',
      AUTH_JWT_SECRET: SECRET,
      DATABASE_URL: unreachable,
      DATABASE_MIGRATE_ON_START: 'true',
      PORT: String(await freePort()),
    });

    expect(code).toBe(1);
    expect(parsedLines(lines).at(-1)).toMatchObject({ level: 60 });
  });

  it('should be JSON lines in development too when the output is not a terminal', async () => {
    const { code, lines } = await runUntilExit({ NODE_ENV: 'development', DATABASE_URL: unreachable, PORT: String(await freePort()) });

    expect(code).toBe(1);
    expect(parsedLines(lines).at(-1)).toMatchObject({ level: 60, msg: 'The service failed to start' });
  });

  it('should refuse to start in production without DATABASE_URL, saying why, instead of starting an embedded server', async () => {
    const { code, lines } = await runUntilExit({ NODE_ENV: 'production', AUTH_JWT_SECRET: SECRET, PORT: String(await freePort()) });

    expect(code).toBe(1);
    const entries = parsedLines(lines);
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ level: 60, msg: expect.stringContaining('DATABASE_URL must be set when NODE_ENV=production') });
  });

  it('should name the bad setting as a JSON line when the configuration is invalid', async () => {
    const { code, lines } = await runUntilExit({ NODE_ENV: 'production', AUTH_JWT_SECRET: SECRET, DATABASE_URL: unreachable, PORT: 'eighty' });

    expect(code).toBe(1);
    expect(parsedLines(lines)).toEqual([expect.objectContaining({ level: 60, msg: expect.stringContaining('PORT') })]);
  });
});
