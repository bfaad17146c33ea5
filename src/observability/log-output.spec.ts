import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { TurnBatchedLogOutput } from './log-output';

describe('TurnBatchedLogOutput', () => {
  let directory: string;
  let file: string;
  let fd: number;

  beforeEach(() => {
    directory = mkdtempSync(path.join(tmpdir(), 'log-output-'));
    file = path.join(directory, 'log');
    fd = openSync(file, 'a');
  });
  afterEach(() => {
    closeSync(fd);
    rmSync(directory, { recursive: true, force: true });
  });

  it('should write the lines of one turn together, in order, at the end of the turn', async () => {
    const output = new TurnBatchedLogOutput(fd);
    output.write('first\n');
    output.write('second\n');
    expect(readFileSync(file, 'utf8')).toBe('');

    await nextTurn();
    expect(readFileSync(file, 'utf8')).toBe('first\nsecond\n');
    output.write('third\n');
    await nextTurn();
    expect(readFileSync(file, 'utf8')).toBe('first\nsecond\nthird\n');
  });

  it('should write at once on flush, and when many lines wait', () => {
    const output = new TurnBatchedLogOutput(fd);
    output.write('flushed\n');
    const flushed = jest.fn();
    output.flush(flushed);
    expect(flushed).toHaveBeenCalledTimes(1);
    expect(readFileSync(file, 'utf8')).toBe('flushed\n');

    const long = `${'x'.repeat(1023)}\n`;
    for (let line = 0; line < 64; line += 1) output.write(long);
    expect(readFileSync(file, 'utf8')).toBe(`flushed\n${long.repeat(64)}`);
  });

  it('should write the lines still waiting when the process exits in the same turn', () => {
    const entry = path.resolve(__dirname, '../../dist/src/observability/log-output.js');
    const child = spawnSync(
      process.execPath,
      ['-e', `const o = require(${JSON.stringify(entry)}).stdoutLogOutput(); o.write('before exit\\n'); process.exit(3);`],
      { encoding: 'utf8' },
    );
    expect(child.status).toBe(3);
    expect(child.stdout).toBe('before exit\n');
  });
});
