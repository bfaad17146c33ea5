/** One step of the run as the progress bar counts it; its weight is its expected length. */
export interface PlannedStep {
  label: string;
  expectedSeconds: number;
}

const BAR_WIDTH = 24;
const REDRAW_INTERVAL_MS = 250;

/**
 * A progress bar on stderr, so stdout keeps only the final table. On a terminal it redraws one
 * line with \r; otherwise (CI, a pipe, a log file) it prints one line per step, since \r would
 * pile up as garbage there. Overall progress is weighted by each step's expected length.
 */
export class Progress {
  private readonly totalSeconds: number;
  private readonly isTty: boolean;
  private index = -1;
  private finishedSeconds = 0;
  private stepStartedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private finished = false;

  constructor(
    private readonly steps: readonly PlannedStep[],
    private readonly stream: NodeJS.WriteStream = process.stderr,
  ) {
    this.totalSeconds = steps.reduce((sum, step) => sum + step.expectedSeconds, 0);
    this.isTty = stream.isTTY;
  }

  /** Starts the next planned step; `label` must be the label it was planned with (a typo would skew the bar). */
  step(label: string): void {
    if (this.index >= 0) this.finishedSeconds += this.current().expectedSeconds;
    this.index += 1;
    const planned = this.steps[this.index];
    if (planned?.label !== label) {
      throw new Error(`Progress: step ${this.index + 1} is "${label}", but the plan says "${planned?.label ?? '(none)'}"`);
    }
    this.stepStartedAt = Date.now();
    if (this.isTty) {
      this.timer ??= setInterval(() => this.redraw(), REDRAW_INTERVAL_MS).unref();
      this.redraw();
    } else {
      this.stream.write(`${this.statusLine()}\n`);
    }
  }

  /** Prints a message above the bar (a check failure, a warning) without garbling it. */
  log(message: string): void {
    if (this.isTty) this.stream.write('\r\x1b[K');
    this.stream.write(`${message}\n`);
    if (this.isTty && this.timer) this.redraw();
  }

  /** Stops redrawing and ends with a last line (on a terminal, the bar's line). Only the first call counts. */
  finish(outcome: 'done' | 'failed' | 'interrupted'): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.index < 0) return;
    this.stream.write(`${this.isTty ? '\r\x1b[K' : ''}${this.statusLine(outcome)}\n`);
  }

  private current(): PlannedStep {
    return this.steps[this.index]!;
  }

  private redraw(): void {
    this.stream.write(`\r\x1b[K${this.statusLine()}`);
  }

  private statusLine(outcome?: 'done' | 'failed' | 'interrupted'): string {
    const step = this.current();
    const elapsedSeconds = (Date.now() - this.stepStartedAt) / 1000;
    const done = outcome === 'done';
    const doneSeconds = done ? this.totalSeconds : this.finishedSeconds + Math.min(elapsedSeconds, step.expectedSeconds);
    const fraction = this.totalSeconds > 0 ? doneSeconds / this.totalSeconds : 1;
    const filled = Math.round(fraction * BAR_WIDTH);
    const bar = `${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}`;
    const percent = `${Math.floor(fraction * 100)}%`.padStart(4);
    const counter = `${this.index + 1}/${this.steps.length}`;
    const label = done ? 'done' : `${step.label}${outcome ? `: ${outcome}` : this.isTty ? ` (${elapsedSeconds.toFixed(0)} s)` : ''}`;
    return `bench [${bar}] ${percent} step ${counter}: ${label}`;
  }
}
