import cluster from 'node:cluster';
import type { Registry } from 'prom-client';
import { stdoutLogOutput } from '../observability/log-output';
import { type ClusterMessage, isClusterMessage } from './cluster-messages';

/** Longer than the primary's wait for the workers' registries (cluster.ts), so that a slow worker leaves a partial answer, not an error. */
const INSTANCE_METRICS_TIMEOUT_MS = 5_000;

export interface WorkerClusterState {
  /** This worker's cluster id (1, 2, ...; a replacement gets the next one). */
  worker: number;
  /** Workers whose server listens, as the primary last said; 0 until it first says. */
  workersListening: number;
  workersWanted: number;
}

/**
 * A cluster worker's side of the IPC with the primary (cluster.ts): it answers the primary's
 * requests for its metrics registry, asks the primary for the instance's metrics, and remembers
 * how many workers the primary says are listening. Exists only in a node:cluster worker, so a
 * single process (WEB_CONCURRENCY=1) never touches any of this.
 */
class ClusterWorkerLink {
  private registry: Registry | undefined;
  private nextRequestId = 0;
  private readonly pending = new Map<number, { resolve: (text: string) => void; reject: (error: Error) => void; timer: NodeJS.Timeout }>();
  private workers: Pick<WorkerClusterState, 'workersListening' | 'workersWanted'> = { workersListening: 0, workersWanted: 0 };

  constructor(private readonly workerId: number) {
    // Installed when this module loads, long before the server listens: the primary asks only listening workers.
    process.on('message', (message: unknown) => {
      if (isClusterMessage(message)) this.receive(message);
    });
  }

  /** The registry the primary gets when it sums the workers' metrics. */
  serveRegistry(registry: Registry): void {
    this.registry = registry;
  }

  state(): WorkerClusterState {
    return { worker: this.workerId, ...this.workers };
  }

  /** The instance's metrics: every worker's registry summed by the primary, in Prometheus text. */
  instanceMetrics(): Promise<string> {
    const requestId = this.nextRequestId++;
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(requestId);
        reject(new Error(`The cluster primary did not send the instance's metrics within ${INSTANCE_METRICS_TIMEOUT_MS} ms`));
      }, INSTANCE_METRICS_TIMEOUT_MS);
      this.pending.set(requestId, { resolve, reject, timer });
      this.send({ type: 'match-booking:metrics-request', requestId }, (error) => {
        clearTimeout(timer);
        this.pending.delete(requestId);
        reject(new Error(`Asking the cluster primary for the instance's metrics failed: ${error.message}`, { cause: error }));
      });
    });
  }

  private receive(message: ClusterMessage): void {
    switch (message.type) {
      case 'match-booking:cluster-state':
        this.workers = { workersListening: message.workersListening, workersWanted: message.workersWanted };
        return;
      case 'match-booking:metrics-reply': {
        const request = this.pending.get(message.requestId);
        if (!request) return; // timed out already
        this.pending.delete(message.requestId);
        clearTimeout(request.timer);
        if (message.text !== undefined) request.resolve(message.text);
        else request.reject(new Error(`The cluster primary could not sum the workers' metrics: ${message.error ?? 'no reason given'}`));
        return;
      }
      case 'match-booking:metrics-collect':
        this.sendRegistry(message.collectId);
        return;
      case 'match-booking:metrics-request':
      case 'match-booking:metrics-collected':
        return; // the primary's to receive
    }
  }

  private sendRegistry(collectId: number): void {
    // Before Metrics exists there is nothing to count yet: an empty registry, not a missing answer.
    const metrics = this.registry?.getMetricsAsJSON() ?? Promise.resolve([]);
    metrics.then(
      (json) => this.send({ type: 'match-booking:metrics-collected', collectId, metrics: json }, (error) => logWorkerIpcFailure('sending its metrics', error)),
      (error: unknown) => {
        // The primary leaves this worker out of the sum after its timeout; say why here.
        logWorkerIpcFailure('collecting its metrics', error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  private send(message: ClusterMessage, onError: (error: Error) => void): void {
    if (!process.send || !process.connected) {
      onError(new Error('the IPC channel to the primary is closed'));
      return;
    }
    process.send(message, undefined, {}, (error: Error | null) => {
      if (error) onError(error);
    });
  }
}

/**
 * Written straight to the log output rather than through the root logger: this module sits below
 * the logging and metrics modules (they import it). A failed IPC send is rare.
 */
function logWorkerIpcFailure(what: string, error: Error): void {
  stdoutLogOutput().write(
    `${JSON.stringify({ level: 50, time: Date.now(), service: 'match-booking', worker: cluster.worker?.id, context: 'Cluster', msg: `Worker IPC failed while ${what}: ${error.message}` })}\n`,
  );
}

/** Set only in a node:cluster worker (WEB_CONCURRENCY > 1); undefined in a single process. */
export const clusterWorker: ClusterWorkerLink | undefined = cluster.isWorker && cluster.worker ? new ClusterWorkerLink(cluster.worker.id) : undefined;

/** The `worker` field of every log line of a cluster worker; nothing in a single process. */
export function workerLogFields(): { worker?: number } {
  return cluster.isWorker && cluster.worker ? { worker: cluster.worker.id } : {};
}
