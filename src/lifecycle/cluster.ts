import cluster, { type Worker } from 'node:cluster';
import type { Logger } from 'pino';
import { AggregatorRegistry, Counter, Gauge, Registry } from 'prom-client';
import type { AppConfig } from '../config/app-config';
import { type DatabaseTarget, prepareDatabase } from '../database/database-setup';
import { type ClusterMessage, isClusterMessage, type RegistryJson } from './cluster-messages';

/**
 * Cluster mode (WEB_CONCURRENCY > 1): `node dist/src/main.js` becomes this primary, which serves
 * nothing itself. It runs the migrations once (starting the embedded PostgreSQL when there is no
 * DATABASE_URL), then forks WEB_CONCURRENCY workers with node:cluster. Each worker is the whole
 * service of main.ts (own pool, booking queue, Redis connections, jobs), and they share the
 * listening port, which the primary hands out round-robin. The primary
 *  - forwards SIGTERM/SIGINT to every worker, each of which runs its own shutdown sequence
 *    (graceful-shutdown.ts), exits when all have exited (1 if any failed), and kills those still
 *    running SHUTDOWN_GRACE_PERIOD_MS + SHUTDOWN_KILL_MARGIN_MS after the signal;
 *  - replaces a worker that exits on its own, after a back-off that grows while workers keep
 *    crashing, and gives up (stops the others, exits 1) past a crash budget (CrashBudget);
 *  - tells the workers how many of them listen (their readiness reports it);
 *  - sums the workers' metrics registries when one of them serves GET /metrics.
 */

/** Beyond the grace period: the workers' last steps (pool, Redis, embedded server, spans: at most 2 s). */
export const SHUTDOWN_KILL_MARGIN_MS = 5_000;
/** How long a scrape waits for each worker's registry; a worker that does not answer is left out of that scrape. */
const METRICS_COLLECT_TIMEOUT_MS = 2_000;

export interface CrashBudgetLimits {
  windowMs: number;
  /** More crashes than this within the window: give up. */
  maxCrashes: number;
  /** The delay after the second crash in the window; it doubles with each further one, up to maxDelayMs. The first is replaced at once. */
  firstDelayMs: number;
  maxDelayMs: number;
}

export function crashBudgetLimits(workersWanted: number): CrashBudgetLimits {
  return { windowMs: 60_000, maxCrashes: Math.max(10, 2 * workersWanted), firstDelayMs: 500, maxDelayMs: 10_000 };
}

/**
 * When to replace a crashed worker: at once after a lone crash, then later and later while
 * crashes keep coming, and never again once there were too many in the window. A deploy whose
 * workers die at startup then ends with exit code 1 for the orchestrator to see, instead of
 * forking forever.
 */
export class CrashBudget {
  private crashes: number[] = [];

  constructor(private readonly limits: CrashBudgetLimits) {}

  /** Counts a crash at `now` (ms); says how long to wait before the replacement, or to give up. */
  recordCrash(now: number): { giveUp: false; delayMs: number; crashesInWindow: number } | { giveUp: true; crashesInWindow: number } {
    this.crashes = this.crashes.filter((at) => now - at < this.limits.windowMs);
    const earlier = this.crashes.length;
    this.crashes.push(now);
    const crashesInWindow = earlier + 1;
    if (crashesInWindow > this.limits.maxCrashes) return { giveUp: true, crashesInWindow };
    const delayMs = earlier === 0 ? 0 : Math.min(this.limits.firstDelayMs * 2 ** (earlier - 1), this.limits.maxDelayMs);
    return { giveUp: false, delayMs, crashesInWindow };
  }
}

/**
 * Runs the primary: database and migrations first, then the workers. Resolves once they are
 * forked; the process then lives until its workers have stopped, and ends through `exit`.
 */
export async function runClusterPrimary(config: AppConfig, rootLogger: Logger, exit: (code: number) => void): Promise<void> {
  const log = rootLogger.child({ context: 'Cluster' });
  const logger = { log: (message: string) => log.info(message) };
  // Once, here, rather than in every worker: the workers get the resolved URL and run no migrations.
  const database = await prepareDatabase(config, logger);
  new ClusterPrimary(config, log, database, exit).start();
}

class ClusterPrimary {
  private readonly wanted: number;
  /** Forked and not yet exited, by cluster id. */
  private readonly live = new Map<number, Worker>();
  private readonly listening = new Set<number>();
  private readonly restartTimers = new Set<NodeJS.Timeout>();
  private readonly crashes: CrashBudget;
  private stopping: { exitCode: number; killTimer: NodeJS.Timeout } | undefined;
  private nextCollectId = 0;
  private readonly collecting = new Map<number, (metrics: RegistryJson) => void>();
  /** The primary's own figures, summed in with the workers' registries. */
  private readonly registry = new Registry();
  private readonly restartsTotal: Counter;
  private readonly workersAnswered: Gauge;

  constructor(
    private readonly config: AppConfig,
    private readonly log: Logger,
    private readonly database: DatabaseTarget,
    private readonly exit: (code: number) => void,
  ) {
    this.wanted = config.cluster.workers;
    this.crashes = new CrashBudget(crashBudgetLimits(this.wanted));
    const listening = this.listening;
    new Gauge({ name: 'cluster_workers_wanted', help: 'Worker processes the instance runs when all is well (WEB_CONCURRENCY)', registers: [this.registry] }).set(this.wanted);
    new Gauge({
      name: 'cluster_workers_listening',
      help: 'Worker processes whose server listens',
      registers: [this.registry],
      collect() {
        this.set(listening.size);
      },
    });
    this.restartsTotal = new Counter({ name: 'cluster_worker_restarts_total', help: 'Workers that exited unexpectedly and were replaced', registers: [this.registry] });
    this.workersAnswered = new Gauge({
      name: 'cluster_metrics_workers_answered',
      help: 'Workers whose metrics are in this scrape (a worker that did not answer in time is left out)',
      registers: [this.registry],
    });
  }

  start(): void {
    // Node's default on Linux, set here so that an environment variable cannot change it unseen.
    cluster.schedulingPolicy = cluster.SCHED_RR;
    cluster.on('listening', (worker, address) => {
      if (!this.listening.has(worker.id)) this.log.info({ worker: worker.id, pid: worker.process.pid }, `Worker ${worker.id} listening on ${address.address}:${address.port}`);
      this.listening.add(worker.id);
      this.broadcastState();
    });
    cluster.on('exit', (worker, code, signal) => this.onExit(worker, code, signal));
    cluster.on('message', (worker, message: unknown) => {
      if (isClusterMessage(message)) this.receive(worker, message);
    });
    process.on('SIGTERM', () => this.stop('SIGTERM received', 'SIGTERM'));
    process.on('SIGINT', () => this.stop('SIGINT received', 'SIGINT'));
    this.log.info(`Cluster primary (pid ${process.pid}) starting ${this.wanted} workers`);
    for (let slot = 0; slot < this.wanted; slot += 1) this.fork();
  }

  private fork(): void {
    const worker = cluster.fork({
      // The embedded server's address when there is no DATABASE_URL: every worker uses the one server started here.
      DATABASE_URL: this.database.url,
      // The primary ran them.
      DATABASE_MIGRATE_ON_START: 'false',
    });
    this.live.set(worker.id, worker);
    worker.on('error', (error: Error) => this.log.error({ worker: worker.id, err: error }, `Worker ${worker.id}: IPC error`));
    this.log.info({ worker: worker.id, pid: worker.process.pid }, `Worker ${worker.id} forked (pid ${worker.process.pid})`);
  }

  private onExit(worker: Worker, code: number | null, signal: string | null): void {
    this.live.delete(worker.id);
    this.listening.delete(worker.id);
    const how = signal ? `signal ${signal}` : `code ${code}`;
    const fields = { worker: worker.id, pid: worker.process.pid, code, signal };
    if (this.stopping) {
      if (code === 0 && !signal) {
        this.log.info(fields, `Worker ${worker.id} stopped (${how})`);
      } else {
        this.stopping.exitCode = 1;
        this.log.error(fields, `Worker ${worker.id} stopped with ${how}`);
      }
      if (this.live.size === 0) void this.finish();
      return;
    }
    this.broadcastState();
    const decision = this.crashes.recordCrash(Date.now());
    if (decision.giveUp) {
      this.log.fatal(fields, `Worker ${worker.id} exited unexpectedly with ${how}: ${decision.crashesInWindow} worker exits within a minute; giving up`);
      this.stop('Workers keep crashing', 'SIGTERM', 1);
      return;
    }
    this.log.error(
      { ...fields, restartInMs: decision.delayMs },
      `Worker ${worker.id} exited unexpectedly with ${how}; starting a replacement ${decision.delayMs === 0 ? 'now' : `in ${decision.delayMs} ms`}`,
    );
    this.restartsTotal.inc();
    const timer = setTimeout(() => {
      this.restartTimers.delete(timer);
      this.fork();
    }, decision.delayMs);
    this.restartTimers.add(timer);
  }

  /** Forwards the signal to every worker; the process exits once all have exited (finish). */
  private stop(reason: string, signal: NodeJS.Signals, exitCode = 0): void {
    if (this.stopping) {
      this.log.warn(`${reason} again; the shutdown already in progress continues`);
      return;
    }
    for (const timer of this.restartTimers) clearTimeout(timer);
    this.restartTimers.clear();
    const killAfterMs = this.config.shutdown.gracePeriodMs + SHUTDOWN_KILL_MARGIN_MS;
    this.stopping = { exitCode, killTimer: setTimeout(() => this.killStragglers(killAfterMs), killAfterMs) };
    this.log.info(`${reason}: forwarding ${signal} to ${this.live.size} worker(s); each drains its requests and stops`);
    // A signal sent to the whole process group reached the workers already; a second one is logged and ignored there.
    for (const worker of this.live.values()) worker.process.kill(signal);
    if (this.live.size === 0) void this.finish();
  }

  private killStragglers(afterMs: number): void {
    if (!this.stopping) return;
    this.stopping.exitCode = 1;
    for (const worker of this.live.values()) {
      this.log.error({ worker: worker.id, pid: worker.process.pid }, `Worker ${worker.id} still running ${afterMs} ms after the signal; killing it`);
      worker.process.kill('SIGKILL');
    }
  }

  private async finish(): Promise<void> {
    const stopping = this.stopping;
    if (!stopping) return;
    clearTimeout(stopping.killTimer);
    const embedded = this.database.embedded;
    if (embedded?.startedHere) {
      try {
        await embedded.stop();
        this.log.info('Embedded PostgreSQL stopped');
      } catch (error) {
        stopping.exitCode = 1;
        this.log.error({ err: error }, 'Stopping the embedded PostgreSQL failed');
      }
    }
    this.log.info(`All workers stopped; exiting with code ${stopping.exitCode}`);
    this.exit(stopping.exitCode);
  }

  private broadcastState(): void {
    this.sendToAll({ type: 'match-booking:cluster-state', workersListening: this.listening.size, workersWanted: this.wanted });
  }

  private sendToAll(message: ClusterMessage): void {
    for (const worker of this.live.values()) this.send(worker, message);
  }

  private send(worker: Worker, message: ClusterMessage): void {
    // A worker that is exiting has closed its channel: nothing to tell it any more.
    if (!worker.isConnected()) return;
    worker.send(message, undefined, (error: Error | null) => {
      if (error) this.log.warn({ worker: worker.id, err: error }, `Sending ${message.type} to worker ${worker.id} failed`);
    });
  }

  private receive(worker: Worker, message: ClusterMessage): void {
    switch (message.type) {
      case 'match-booking:metrics-request':
        this.instanceMetrics().then(
          (text) => this.send(worker, { type: 'match-booking:metrics-reply', requestId: message.requestId, text }),
          (error: unknown) => {
            this.log.error({ worker: worker.id, err: error }, 'Summing the workers\' metrics failed');
            this.send(worker, { type: 'match-booking:metrics-reply', requestId: message.requestId, error: error instanceof Error ? error.message : String(error) });
          },
        );
        return;
      case 'match-booking:metrics-collected':
        this.collecting.get(message.collectId)?.(message.metrics);
        return;
      case 'match-booking:cluster-state':
      case 'match-booking:metrics-collect':
      case 'match-booking:metrics-reply':
        return; // the workers' to receive
    }
  }

  /**
   * Every listening worker's registry, summed by prom-client's aggregator (counters and
   * histograms summed, gauges as each declares: metrics.ts), with the primary's own figures.
   * Not AggregatorRegistry.clusterMetrics(): it asks every connected worker, including one still
   * loading that cannot answer yet, and then fails the whole scrape after 5 s; here such a
   * worker is not asked, and one that does not answer in time is left out of this scrape.
   */
  private async instanceMetrics(): Promise<string> {
    const workers = [...this.live.values()].filter((worker) => this.listening.has(worker.id) && worker.isConnected());
    const answers = await Promise.all(workers.map((worker) => this.collectFrom(worker)));
    const registries = answers.filter((answer): answer is RegistryJson => answer !== undefined);
    this.workersAnswered.set(registries.length);
    const own = await this.registry.getMetricsAsJSON();
    return AggregatorRegistry.aggregate([...registries, own]).metrics();
  }

  private collectFrom(worker: Worker): Promise<RegistryJson | undefined> {
    const collectId = this.nextCollectId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.collecting.delete(collectId);
        this.log.warn({ worker: worker.id }, `Worker ${worker.id} sent no metrics within ${METRICS_COLLECT_TIMEOUT_MS} ms; left out of this scrape`);
        resolve(undefined);
      }, METRICS_COLLECT_TIMEOUT_MS);
      this.collecting.set(collectId, (metrics) => {
        clearTimeout(timer);
        this.collecting.delete(collectId);
        resolve(metrics);
      });
      this.send(worker, { type: 'match-booking:metrics-collect', collectId });
    });
  }
}
