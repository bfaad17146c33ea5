import { readFile } from 'node:fs/promises';
import { processTree } from './process-tree';

const SAMPLE_INTERVAL_MS = 250;

export interface MemoryStats {
  samples: number;
  peakBytes: number;
  meanBytes: number;
}

export interface MemoryReport {
  /** RSS once the service was ready, before any load. */
  idleBytes: number | null;
  /** Over every sample taken during a measured scenario step. */
  overall: MemoryStats;
  perScenario: Record<string, MemoryStats>;
}

class Accumulator {
  private count = 0;
  private sum = 0;
  private peak = 0;

  add(bytes: number): void {
    this.count += 1;
    this.sum += bytes;
    this.peak = Math.max(this.peak, bytes);
  }

  stats(): MemoryStats {
    return { samples: this.count, peakBytes: this.peak, meanBytes: this.count > 0 ? Math.round(this.sum / this.count) : 0 };
  }
}

/**
 * Samples the service's resident set size (VmRSS in /proc/<pid>/status) every 250 ms and files
 * each sample under the scenario running at the time. Samples between scenarios (setup, checks)
 * are not counted, so "overall" describes the service under load.
 */
export class RssSampler {
  private readonly overall = new Accumulator();
  private readonly perScenario = new Map<string, Accumulator>();
  private scenario: string | undefined;
  private idleBytes: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private unavailable = false;

  /** `withWorkers`: the service runs in cluster mode; its workers' RSS is added to the primary's. */
  constructor(
    private readonly pid: number,
    private readonly withWorkers = false,
  ) {}

  async start(): Promise<void> {
    this.idleBytes = await this.read();
    // unref: a run that fails half-way must still be able to exit.
    this.timer = setInterval(() => void this.sample(), SAMPLE_INTERVAL_MS).unref();
  }

  /** Files the following samples under `scenario`; undefined stops counting them. */
  setScenario(scenario: string | undefined): void {
    this.scenario = scenario;
  }

  stop(): MemoryReport {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    return {
      idleBytes: this.idleBytes,
      overall: this.overall.stats(),
      perScenario: Object.fromEntries([...this.perScenario].map(([name, accumulator]) => [name, accumulator.stats()])),
    };
  }

  private async sample(): Promise<void> {
    const scenario = this.scenario;
    if (scenario === undefined) return;
    const bytes = await this.read();
    if (bytes === null) return;
    this.overall.add(bytes);
    let accumulator = this.perScenario.get(scenario);
    if (!accumulator) this.perScenario.set(scenario, (accumulator = new Accumulator()));
    accumulator.add(bytes);
  }

  /**
   * VmRSS in bytes of the service: the process and, in cluster mode, its workers (process-tree.ts),
   * summed, so pages they share (the node binary) count once per process; null when /proc cannot
   * tell (not Linux, or the process is gone).
   */
  private async read(): Promise<number | null> {
    if (this.unavailable) return null;
    const own = await this.readProcess(this.pid);
    if (own === null) {
      // No /proc or no such process: memory is then reported as unknown rather than failing the run.
      this.unavailable = true;
      return null;
    }
    if (!this.withWorkers) return own;
    const workers = await Promise.all((await processTree(this.pid)).slice(1).map((pid) => this.readProcess(pid)));
    return workers.reduce<number>((sum, bytes) => sum + (bytes ?? 0), own);
  }

  private async readProcess(pid: number): Promise<number | null> {
    try {
      const status = await readFile(`/proc/${pid}/status`, 'utf8');
      const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
      return match ? Number(match[1]) * 1024 : null;
    } catch {
      return null; // gone (a worker that just exited), or no /proc
    }
  }
}
