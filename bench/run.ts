/**
 * npm run bench [-- --keep] / npm run bench:quick: builds (in the npm script), starts the
 * production build against a fresh database, drives it with autocannon and the same transaction
 * with pgbench, checks correctness after every step, and writes bench/results/<time>/report.json
 * and chart.svg (copied to bench/results/latest/). Exits 1 when a check failed, 2 on a usage error.
 */
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { loadConfig } from '../src/config/app-config';
import { BookingApi, randomJwtSecret } from './api';
import { renderChart } from './chart';
import { CheckLog } from './checks';
import {
  BENCH_DATABASE,
  createBenchDatabase,
  type DatabaseServer,
  dropBenchDatabase,
  lockBenchDatabase,
  openBenchPool,
  resolveDatabaseServer,
} from './database';
import { describeGit, describeMachine } from './machine';
import { type MemoryReport, RssSampler } from './memory';
import { type BenchOptions, parseOptions, UsageError } from './options';
import { findPgbench, PGBENCH_MAX_THREADS, PGBENCH_QUERY_MODE } from './pgbench';
import { pgbenchScript } from './pgbench-script';
import { Progress } from './progress';
import { type BenchReport, compareThroughput, FAIRNESS_TARGET, type PgbenchSection, writeReport } from './report';
import { planSteps, prepareService, runPgbenchScenarios, runServiceScenarios, type ServiceResults, STEP } from './scenarios';
import { startPgbouncer } from '../test/support/pgbouncer';
import { type RunningService, SERVICE_LOG_LEVEL, startService } from './service';
import { round } from './stats';
import { formatReportTable } from './table';
import { runTracingCost, type TracingCostStep } from './tracing-cost';

const RESULTS_DIRECTORY = path.join(__dirname, 'results');

/** Undo steps, run last-in first-out exactly once: at the end, on failure, or on Ctrl-C. */
class Cleanup {
  private readonly steps: Array<{ name: string; run: () => Promise<void> }> = [];
  private running: Promise<void> | undefined;

  add(name: string, run: () => Promise<void>): void {
    this.steps.push({ name, run });
  }

  runAll(log: (message: string) => void): Promise<void> {
    this.running ??= (async () => {
      for (const step of this.steps.reverse()) {
        try {
          await step.run();
        } catch (error) {
          // Keep cleaning up: one failed step must not leave the service or the database behind.
          log(`bench: cleanup "${step.name}" failed: ${describeError(error)}`);
        }
      }
    })();
    return this.running;
  }
}

async function main(): Promise<number> {
  const options = parseOptions(process.argv.slice(2));
  const startedAt = new Date();
  const resultsDirectory = path.join(RESULTS_DIRECTORY, startedAt.toISOString().replace(/[:.]/g, '-'));
  await mkdir(resultsDirectory, { recursive: true });

  const pgbenchVersion = await findPgbench();
  const progress = new Progress(planSteps(options, pgbenchVersion !== null));
  const log = (message: string): void => progress.log(message);
  const checks = new CheckLog(log);
  const cleanup = new Cleanup();
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    // Ctrl-C often arrives twice (from the terminal, and relayed by tsx's own process): a second
    // signal must not kill the bench half-way through stopping the service and dropping the database.
    if (interrupted) return;
    interrupted = true;
    progress.finish('interrupted');
    process.stderr.write(`bench: ${signal}, stopping the service and cleaning up\n`);
    void cleanup.runAll((message) => process.stderr.write(`${message}\n`)).finally(() => process.exit(130));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    progress.step(STEP.prepare);
    const server = await resolveDatabaseServer(process.env, (message) => log(`embedded PostgreSQL: ${message}`));
    cleanup.add('release the database server', () => server.release());
    cleanup.add('unlock the bench database', await lockBenchDatabase(server));
    const databaseUrl = await createBenchDatabase(server);
    if (!options.keep) cleanup.add(`drop database ${BENCH_DATABASE}`, () => dropBenchDatabase(server));
    const db = openBenchPool(databaseUrl);
    cleanup.add('close the bench pool', () => db.end());

    const secret = randomJwtSecret();
    const serviceLog = path.join(resultsDirectory, 'service.log');
    let serviceDatabase: { databaseUrl: string; directUrl?: string } = { databaseUrl };
    let stopPgbouncer = (): Promise<void> => Promise.resolve();
    if (options.pgbouncer) {
      // As many server connections as the service's pool, so PgBouncer itself is no bottleneck.
      const { poolMax } = loadConfig({ DATABASE_POOL_MAX: process.env.DATABASE_POOL_MAX }, { requireProductionAuth: false }).database;
      const pgbouncer = await startPgbouncer(databaseUrl, { poolSize: poolMax });
      cleanup.add('stop PgBouncer', () => pgbouncer.stop());
      stopPgbouncer = () => pgbouncer.stop();
      serviceDatabase = { databaseUrl: pgbouncer.route(databaseUrl), directUrl: databaseUrl };
    }
    const serviceSettings = { ...serviceDatabase, jwtSecret: secret, logFile: serviceLog };
    const profileDirectory = path.join(resultsDirectory, 'cpu-profile');
    const service = await startService({ ...serviceSettings, ...(options.profile ? { cpuProfileDirectory: profileDirectory } : {}) }, process.env);
    cleanup.add('stop the service', async () => {
      await service.stop();
    });
    const memory = new RssSampler(service.pid, service.withWorkers);
    await memory.start();

    const api = new BookingApi(service.baseUrl, secret, options.customers);
    const serviceContext = { options, api, baseUrl: service.baseUrl, db, progress, memory, checks, servicePid: service.pid, serviceWithWorkers: service.withWorkers };
    const spreadMatches = await prepareService(serviceContext);
    const serviceResults = await runServiceScenarios(serviceContext, spreadMatches);

    progress.step(STEP.stopService);
    const memoryReport = memory.stop();
    const exit = await service.stop();
    if (exit.killed || exit.code !== 0) log(`bench: the service exited with code ${exit.code} (signal ${exit.signal}${exit.killed ? ', killed after the stop timeout' : ''}); see ${serviceLog}`);
    if (options.profile) log(`bench: ${await keepCpuProfile(profileDirectory, path.join(resultsDirectory, 'service.cpuprofile'))}`);
    const tracing = await runTracingCost({
      options,
      api,
      db,
      progress,
      checks,
      service: serviceSettings,
      spreadMatches,
      addCleanup: (name, run) => cleanup.add(name, run),
    });
    // Its server connections would count against the server's connections that pgbench needs.
    await stopPgbouncer();

    // After the service stopped: pgbench gets the machine and the server's connections to itself.
    const pgbench: PgbenchSection =
      pgbenchVersion === null
        ? { available: false, skipped: 'pgbench is not on the PATH' }
        : {
            available: true,
            version: pgbenchVersion,
            scripts: { hot: pgbenchScript('hot'), spread: pgbenchScript('spread') },
            ...(await runPgbenchScenarios({ options, databaseUrl, db, progress, checks })),
          };

    progress.step(STEP.report);
    const report = buildReport({
      options,
      startedAt,
      machine: await describeMachine(db, pgbenchVersion),
      git: await describeGit(),
      server,
      service,
      serviceResults,
      tracing,
      pgbench,
      memory: memoryReport,
      checks,
    });
    const files = await writeReport(report, renderChart(report), resultsDirectory, path.join(RESULTS_DIRECTORY, 'latest'));
    progress.finish('done');
    await cleanup.runAll(log);
    process.stdout.write(formatReportTable(report, relativePaths({ ...files, serviceLog })));
    return report.passed ? 0 : 1;
  } catch (error) {
    progress.finish('failed');
    await cleanup.runAll((message) => process.stderr.write(`${message}\n`));
    throw error;
  }
}

/** Node names the profile after the time and pid; the bench gives it a name to find. Returns what happened, for the log. */
async function keepCpuProfile(directory: string, destination: string): Promise<string> {
  const written = (await readdir(directory).catch(() => [])).filter((name) => name.endsWith('.cpuprofile'));
  if (written.length === 0) return `no CPU profile was written to ${directory} (the service did not exit normally?)`;
  await rename(path.join(directory, written[0]!), destination);
  await rm(directory, { recursive: true, force: true });
  return `CPU profile of the service: ${path.relative(process.cwd(), destination)}`;
}

function buildReport(parts: {
  options: BenchOptions;
  startedAt: Date;
  machine: BenchReport['machine'];
  git: BenchReport['git'];
  server: DatabaseServer;
  service: RunningService;
  serviceResults: ServiceResults;
  tracing: TracingCostStep[];
  pgbench: PgbenchSection;
  memory: MemoryReport;
  checks: CheckLog;
}): BenchReport {
  const { options, serviceResults } = parts;
  const finishedAt = new Date();
  // The pool size exactly as the service computed it from the environment it was given.
  const serviceConfig = loadConfig({ ...parts.service.environment, REDIS_URL: undefined, DATABASE_POOLER: undefined }, { requireProductionAuth: false });
  const fairness = serviceResults.mixed.fairness;
  return {
    schemaVersion: 1,
    startedAt: parts.startedAt.toISOString(),
    finishedAt: finishedAt.toISOString(),
    totalSeconds: round((finishedAt.getTime() - parts.startedAt.getTime()) / 1000, 1),
    passed: parts.checks.failures.length === 0,
    machine: parts.machine,
    git: parts.git,
    options: {
      mode: options.quick ? 'quick' : 'full',
      stepSeconds: options.stepSeconds,
      warmupSeconds: options.warmupSeconds,
      warmupConnections: options.warmupConnections,
      concurrencies: options.concurrencies,
      spreadMatches: options.spreadMatches,
      ampleCapacity: options.ampleCapacity,
      mixedConnections: options.mixedConnections,
      sellOut: options.sellOut,
      requestTimeoutSeconds: options.requestTimeoutSeconds,
      customers: options.customers,
      tracingConnections: options.tracingConnections,
      database: { source: parts.server.source, address: parts.server.address, name: BENCH_DATABASE },
      service: {
        poolMax: serviceConfig.database.poolMax,
        logLevel: SERVICE_LOG_LEVEL,
        redis: parts.service.environment.REDIS_URL !== undefined,
        pgbouncer: options.pgbouncer,
        environment: parts.service.environment,
      },
      pgbench: { queryMode: PGBENCH_QUERY_MODE, maxThreads: PGBENCH_MAX_THREADS },
    },
    service: serviceResults,
    tracing: parts.tracing,
    fairness: { value: fairness, target: FAIRNESS_TARGET, withinTarget: fairness === null ? null : fairness <= FAIRNESS_TARGET },
    pgbench: parts.pgbench,
    comparison: compareThroughput(serviceResults, parts.pgbench),
    memory: parts.memory,
    checks: parts.checks.results,
  };
}

function relativePaths<T extends Record<string, string>>(files: T): T {
  return Object.fromEntries(Object.entries(files).map(([name, file]) => [name, path.relative(process.cwd(), file)])) as T;
}

function describeError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause === undefined ? '' : `\n  caused by: ${describeError(error.cause)}`;
  return `${error.stack ?? error.message}${cause}`;
}

main().then(
  (exitCode) => {
    process.exitCode = exitCode;
  },
  (error: unknown) => {
    if (error instanceof UsageError) {
      process.stderr.write(error.message);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`bench: failed: ${describeError(error)}\n`);
    process.exitCode = 1;
  },
);
