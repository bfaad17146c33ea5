import type { Pool } from 'pg';
import type { BookingApi } from './api';
import {
  type CheckLog,
  checkDatabaseInvariants,
  checkExactCount,
  checkNoServerErrors,
  countBookingsOf,
  matchTotals,
} from './checks';
import { type LoadResult, runLoad } from './load';
import { cpuSeconds } from './cpu';
import type { RssSampler } from './memory';
import { type BenchOptions, TRACING_SETTINGS } from './options';
import { freeConnections, type PgbenchResult, runPgbench } from './pgbench';
import { PGBENCH_CUSTOMER_ID, type PgbenchWorkload, pgbenchMatchesSql, SPREAD_MATCH_COUNT } from './pgbench-script';
import type { PlannedStep, Progress } from './progress';
import { round } from './stats';

/** Step labels, shared by the plan (progress bar), the memory samples and the report. */
export const STEP = {
  prepare: 'start the service',
  createMatches: 'create matches',
  warmUp: 'warm-up (not reported)',
  hot: (connections: number) => `hot @ ${connections}`,
  spread: (connections: number) => `spread @ ${connections}`,
  mixed: (connections: number) => `mixed @ ${connections}+${connections}`,
  sellOut: 'sell-out',
  stopService: 'stop the service',
  tracing: (setting: string) => `${setting} @ spread`,
  pgbench: (workload: PgbenchWorkload, clients: number) => `pgbench ${workload} @ ${clients}`,
  report: 'report',
} as const;

export function planSteps(options: BenchOptions, withPgbench: boolean): PlannedStep[] {
  const timed = (label: string): PlannedStep => ({ label, expectedSeconds: options.stepSeconds });
  return [
    { label: STEP.prepare, expectedSeconds: 5 },
    { label: STEP.createMatches, expectedSeconds: 2 },
    { label: STEP.warmUp, expectedSeconds: options.warmupSeconds },
    ...options.concurrencies.map((c) => timed(STEP.hot(c))),
    ...options.concurrencies.map((c) => timed(STEP.spread(c))),
    timed(STEP.mixed(options.mixedConnections)),
    { label: STEP.sellOut, expectedSeconds: 6 },
    { label: STEP.stopService, expectedSeconds: 1 },
    // Each starts a service of its own (a few seconds), warms it up, then measures one step.
    ...TRACING_SETTINGS.map((setting) => ({ label: STEP.tracing(setting.label), expectedSeconds: 5 + options.warmupSeconds + options.stepSeconds })),
    ...(withPgbench
      ? (['hot', 'spread'] as const).flatMap((workload) => options.concurrencies.map((c) => timed(STEP.pgbench(workload, c))))
      : []),
    { label: STEP.report, expectedSeconds: 1 },
  ];
}

/**
 * The service's CPU time (user + system) over a step, and per booking confirmed in it; null
 * when /proc could not tell. A mixed step's two halves share one figure.
 */
export interface StepCpu {
  serviceSeconds: number | null;
  msPerBooking: number | null;
}

/** One measured autocannon run, labelled with the step it belongs to. */
export type ServiceStep = LoadResult & { label: string; cpu: StepCpu };

export interface SellOutResult extends ServiceStep {
  requests: number;
  capacity: number;
  bookedSlots: number;
  confirmedBookings: number;
}

export interface ServiceResults {
  hot: ServiceStep[];
  spread: ServiceStep[];
  mixed: {
    label: string;
    hot: ServiceStep;
    spread: ServiceStep;
    /** Mixed spread p99 / spread-only p99 at the same connections; target ≤ 2. */
    fairness: number | null;
  };
  sellOut: SellOutResult;
}

export interface ServiceContext {
  options: BenchOptions;
  api: BookingApi;
  baseUrl: string;
  db: Pool;
  progress: Progress;
  memory: RssSampler;
  /** The service process, whose CPU time each step reads (with its workers' in cluster mode). */
  servicePid: number;
  serviceWithWorkers: boolean;
  checks: CheckLog;
}

/** Creates the spread matches and warms the service up (JIT, pools), unmeasured. */
export async function prepareService(ctx: ServiceContext): Promise<string[]> {
  const { options, api } = ctx;
  ctx.progress.step(STEP.createMatches);
  const spreadMatches = await api.createMatches(options.spreadMatches, 'Bench spread match', options.ampleCapacity);
  ctx.progress.step(STEP.warmUp);
  await runLoad({
    ...loadBase(ctx),
    connections: options.warmupConnections,
    until: { seconds: options.warmupSeconds },
    pickMatch: randomOf(spreadMatches),
  });
  return spreadMatches;
}

export async function runServiceScenarios(ctx: ServiceContext, spreadMatches: string[]): Promise<ServiceResults> {
  const { options, api } = ctx;
  const hot: ServiceStep[] = [];
  for (const connections of options.concurrencies) {
    const label = STEP.hot(connections);
    const [result] = await measure(ctx, label, async () => {
      // A fresh match per run, so no run inherits the dead row versions of the one before.
      const match = await api.createMatch(`Bench ${label}`, options.ampleCapacity);
      return [await runLoad({ ...loadBase(ctx), connections, until: { seconds: options.stepSeconds }, pickMatch: () => match })];
    });
    hot.push({ ...result!, label });
  }

  const spread: ServiceStep[] = [];
  for (const connections of options.concurrencies) {
    const label = STEP.spread(connections);
    const [result] = await measure(ctx, label, async () => [
      await runLoad({ ...loadBase(ctx), connections, until: { seconds: options.stepSeconds }, pickMatch: randomOf(spreadMatches) }),
    ]);
    spread.push({ ...result!, label });
  }

  const mixedLabel = STEP.mixed(options.mixedConnections);
  const [mixedHot, mixedSpread] = await measure(ctx, mixedLabel, async () => {
    const match = await api.createMatch(`Bench ${mixedLabel}`, options.ampleCapacity);
    const common = { ...loadBase(ctx), connections: options.mixedConnections, until: { seconds: options.stepSeconds } };
    return Promise.all([runLoad({ ...common, pickMatch: () => match }), runLoad({ ...common, pickMatch: randomOf(spreadMatches) })]);
  });
  const spreadAlone = spread.find((step) => step.connections === options.mixedConnections);
  const fairness =
    spreadAlone && spreadAlone.latency.p99Ms > 0 ? round(mixedSpread!.latency.p99Ms / spreadAlone.latency.p99Ms, 2) : null;

  return {
    hot,
    spread,
    mixed: { label: mixedLabel, hot: { ...mixedHot!, label: `${mixedLabel} (hot half)` }, spread: { ...mixedSpread!, label: `${mixedLabel} (spread half)` }, fairness },
    sellOut: await sellOut(ctx),
  };
}

/** Many more requests than slots: exactly `capacity` must be confirmed, the rest refused with 409. */
async function sellOut(ctx: ServiceContext): Promise<SellOutResult> {
  const { options, api, db, checks } = ctx;
  const { requests, capacity, connections } = options.sellOut;
  const label = STEP.sellOut;
  let match = '';
  const [result] = await measure(ctx, label, async () => {
    match = await api.createMatch('Bench sell-out', capacity);
    return [await runLoad({ ...loadBase(ctx), connections, until: { requests }, pickMatch: () => match })];
  });
  const totals = await matchTotals(db, match);
  const created = result!.statusCounts['201'] ?? 0;
  const refused = result!.statusCounts['409'] ?? 0;
  checks.record([
    checkExactCount(label, 'slots booked = capacity', totals.bookedSlots, capacity),
    checkExactCount(label, 'confirmed bookings = capacity', totals.confirmedBookings, capacity),
    checkExactCount(label, '201 responses = capacity', created, capacity),
    checkExactCount(label, '409 responses = requests - capacity', refused, requests - capacity),
  ]);
  return { ...result!, label, requests, capacity, bookedSlots: totals.bookedSlots, confirmedBookings: totals.confirmedBookings };
}

/**
 * Runs one step with its memory samples filed under its label, then checks that no request got a
 * 5xx and that the database invariants hold.
 */
async function measure(ctx: ServiceContext, label: string, run: () => Promise<LoadResult[]>): Promise<Array<LoadResult & { cpu: StepCpu }>> {
  ctx.progress.step(label);
  ctx.memory.setScenario(label);
  const cpuBefore = await cpuSeconds(ctx.servicePid, ctx.serviceWithWorkers);
  let results: LoadResult[];
  try {
    results = await run();
  } finally {
    ctx.memory.setScenario(undefined);
  }
  const cpu = stepCpu(cpuBefore, await cpuSeconds(ctx.servicePid, ctx.serviceWithWorkers), results);
  for (const result of results) ctx.checks.record(checkNoServerErrors(label, result.statusCounts));
  ctx.checks.record(await checkDatabaseInvariants(ctx.db, label));
  return results.map((result) => ({ ...result, cpu }));
}

/** The service's CPU over a step, from its CPU time before and after, and per booking of the step's results. */
export function stepCpu(cpuBefore: number | null, cpuAfter: number | null, results: LoadResult[]): StepCpu {
  const serviceSeconds = cpuBefore === null || cpuAfter === null ? null : round(cpuAfter - cpuBefore, 3);
  const bookings = results.reduce((sum, result) => sum + (result.statusCounts['201'] ?? 0), 0);
  return { serviceSeconds, msPerBooking: serviceSeconds === null || bookings === 0 ? null : round((serviceSeconds * 1000) / bookings, 3) };
}

export function loadBase(ctx: Pick<ServiceContext, 'baseUrl' | 'api' | 'options'>): { baseUrl: string; customerTokens: readonly string[]; timeoutSeconds: number } {
  return { baseUrl: ctx.baseUrl, customerTokens: ctx.api.customerTokens, timeoutSeconds: ctx.options.requestTimeoutSeconds };
}

export function randomOf(ids: readonly string[]): () => string {
  return () => ids[Math.floor(Math.random() * ids.length)]!;
}

export type PgbenchStep = PgbenchResult | { workload: PgbenchWorkload; clients: number; skipped: string };

export interface PgbenchContext {
  options: BenchOptions;
  databaseUrl: string;
  db: Pool;
  progress: Progress;
  checks: CheckLog;
}

/**
 * The same transaction straight from pgbench, at the same concurrencies, on matches of its own:
 * numbers 1..1000 for spread, and a fresh one per hot run (numbers above 1000).
 */
export async function runPgbenchScenarios(ctx: PgbenchContext): Promise<{ hot: PgbenchStep[]; spread: PgbenchStep[] }> {
  const { options, db } = ctx;
  const firstHot = SPREAD_MATCH_COUNT + 1;
  await db.query(pgbenchMatchesSql(1, SPREAD_MATCH_COUNT + options.concurrencies.length, options.ampleCapacity));
  const results: Record<PgbenchWorkload, PgbenchStep[]> = { hot: [], spread: [] };
  for (const workload of ['hot', 'spread'] as const) {
    for (const [index, clients] of options.concurrencies.entries()) {
      const label = STEP.pgbench(workload, clients);
      ctx.progress.step(label);
      const { free, maxConnections } = await freeConnections(db);
      if (clients > free) {
        const skipped = `needs ${clients} connections; the server (max_connections = ${maxConnections}) has ${free} free`;
        ctx.progress.log(`${label}: skipped, ${skipped}`);
        results[workload].push({ workload, clients, skipped });
        continue;
      }
      const before = await countBookingsOf(db, PGBENCH_CUSTOMER_ID);
      const result = await runPgbench({
        databaseUrl: ctx.databaseUrl,
        workload,
        clients,
        durationSeconds: options.stepSeconds,
        ...(workload === 'hot' ? { hotMatch: firstHot + index } : {}),
      });
      const inserted = (await countBookingsOf(db, PGBENCH_CUSTOMER_ID)) - before;
      const errors = result.abortedClients + result.failedTransactions;
      if (errors > 0 || result.exitCode !== 0) {
        // pgbench is the baseline, not the system under test: a lock timeout of its own is
        // reported with its numbers (as errors), not as a failed check.
        ctx.progress.log(`${label}: pgbench exited with code ${result.exitCode}, ${errors} errors: ${result.errorLines.join(' | ')}`);
      }
      ctx.checks.record([
        {
          scenario: label,
          name: 'pgbench committed bookings',
          passed: result.transactions > 0,
          detail: `${result.transactions} transactions (none means the script does not run against this schema)`,
        },
        checkExactCount(label, 'bookings inserted = transactions pgbench counted', inserted, result.transactions),
        ...(await checkDatabaseInvariants(db, label)),
      ]);
      results[workload].push(result);
    }
  }
  return results;
}
