import { cp, mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CheckResult } from './checks';
import type { GitDescription, MachineDescription } from './machine';
import type { MemoryReport } from './memory';
import type { BenchOptions } from './options';
import type { PGBENCH_QUERY_MODE, PgbenchResult } from './pgbench';
import type { PgbenchStep, ServiceResults } from './scenarios';
import type { TracingCostStep } from './tracing-cost';
import { round } from './stats';

export const FAIRNESS_TARGET = 2;

export interface ThroughputComparison {
  connections: number;
  serviceBookingsPerSecond: number;
  pgbenchTps: number | null;
  /** service / pgbench: the share of the database's own rate the service reaches over HTTP. */
  ratio: number | null;
}

export type PgbenchSection =
  | { available: true; version: string; scripts: { hot: string; spread: string }; hot: PgbenchStep[]; spread: PgbenchStep[] }
  | { available: false; skipped: string };

export interface BenchReport {
  schemaVersion: 1;
  startedAt: string;
  finishedAt: string;
  totalSeconds: number;
  /** Every check passed. */
  passed: boolean;
  machine: MachineDescription;
  git: GitDescription;
  options: Omit<BenchOptions, 'quick' | 'keep' | 'pgbouncer' | 'profile'> & {
    mode: 'quick' | 'full';
    database: { source: 'DATABASE_URL' | 'embedded'; address: string; name: string };
    service: { poolMax: number; logLevel: string; redis: boolean; pgbouncer: boolean; environment: Record<string, string> };
    pgbench: { queryMode: typeof PGBENCH_QUERY_MODE; maxThreads: number };
  };
  service: ServiceResults;
  /** The spread step with tracing off, then on at 100 % and 1 % sampling (tracing-cost.ts). */
  tracing: TracingCostStep[];
  fairness: { value: number | null; target: number; withinTarget: boolean | null };
  pgbench: PgbenchSection;
  comparison: { hot: ThroughputComparison[]; spread: ThroughputComparison[] };
  memory: MemoryReport;
  checks: CheckResult[];
}

export function isPgbenchResult(step: PgbenchStep): step is PgbenchResult {
  return !('skipped' in step);
}

/** service / pgbench throughput per concurrency; null where pgbench did not run. */
export function compareThroughput(service: ServiceResults, pgbench: PgbenchSection): BenchReport['comparison'] {
  const compare = (workload: 'hot' | 'spread'): ThroughputComparison[] =>
    service[workload].map((step) => {
      const match = pgbench.available ? pgbench[workload].find((run) => run.clients === step.connections) : undefined;
      const pgbenchTps = match && isPgbenchResult(match) ? match.tps : null;
      return {
        connections: step.connections,
        serviceBookingsPerSecond: step.bookingsPerSecond,
        pgbenchTps,
        ratio: pgbenchTps ? round(step.bookingsPerSecond / pgbenchTps, 3) : null,
      };
    });
  return { hot: compare('hot'), spread: compare('spread') };
}

/** Writes report.json and chart.svg to `directory`, and the same files to `latestDirectory`. */
export async function writeReport(
  report: BenchReport,
  chartSvg: string,
  directory: string,
  latestDirectory: string,
): Promise<{ reportFile: string; chartFile: string }> {
  await mkdir(directory, { recursive: true });
  const reportFile = path.join(directory, 'report.json');
  const chartFile = path.join(directory, 'chart.svg');
  await writeFile(reportFile, `${JSON.stringify(report, null, 2)}\n`);
  await writeFile(chartFile, chartSvg);
  // Replaced whole, so it never mixes files of two runs.
  await rm(latestDirectory, { recursive: true, force: true });
  await cp(directory, latestDirectory, { recursive: true });
  return { reportFile, chartFile };
}
