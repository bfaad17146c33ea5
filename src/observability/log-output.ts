import { writeSync } from 'node:fs';
import type { DestinationStream } from 'pino';

/** Past this many characters waiting, the lines are written at once rather than at the end of the turn. */
const MAX_PENDING_CHARS = 64 * 1024;
/** How long to wait before trying again when a non-blocking stdout pipe is full. */
const FULL_PIPE_RETRY_MS = 1;
const retryClock = new Int32Array(new SharedArrayBuffer(4));

/**
 * Log lines to a file descriptor, written synchronously but once per turn of the event loop
 * rather than once per line: the lines of one turn (the answers of a batch of bookings, say)
 * leave in one write system call. Synchronous, so the lines stay in order and none is left in
 * a buffer of the stream layer; a line waits at most until the end of its turn, and whatever
 * waits when the process exits (process.exit, an uncaught exception) is written on 'exit'.
 */
export class TurnBatchedLogOutput implements DestinationStream {
  private pending: string[] = [];
  private pendingChars = 0;
  private flushScheduled = false;
  /** Nobody reads any more (EPIPE): lines are dropped, as pino's own destination does. */
  private closed = false;

  constructor(private readonly fd: number) {
    process.on('exit', this.flushSync);
  }

  write(line: string): void {
    if (this.closed) return;
    this.pending.push(line);
    this.pendingChars += line.length;
    if (this.pendingChars >= MAX_PENDING_CHARS) {
      this.flushSync();
    } else if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(this.flushSync);
    }
  }

  /** pino's logger.flush(callback) calls this: everything waiting is written before the callback. */
  flush(callback?: (error?: Error) => void): void {
    this.flushSync();
    callback?.();
  }

  readonly flushSync = (): void => {
    this.flushScheduled = false;
    if (this.pending.length === 0) return;
    const data = Buffer.from(this.pending.join(''));
    this.pending = [];
    this.pendingChars = 0;
    let written = 0;
    while (written < data.length && !this.closed) {
      try {
        written += writeSync(this.fd, data, written);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EAGAIN') Atomics.wait(retryClock, 0, 0, FULL_PIPE_RETRY_MS);
        else if (code === 'EPIPE') this.closed = true;
        else throw error;
      }
    }
  };
}

let stdout: TurnBatchedLogOutput | undefined;

/** The one log output of standard output, shared by the bootstrap logger and the root logger so their lines keep their order. */
export function stdoutLogOutput(): TurnBatchedLogOutput {
  stdout ??= new TurnBatchedLogOutput(1);
  return stdout;
}
