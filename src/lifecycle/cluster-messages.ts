import type { MetricObjectWithValues, MetricValue } from 'prom-client';

/**
 * What the cluster primary (cluster.ts) and its workers (cluster-worker.ts) tell each other over
 * the IPC channel. The type names carry a prefix of ours, so that nothing else sent over the
 * channel is mistaken for them.
 */
export type ClusterMessage =
  /** Primary → every worker, whenever a worker starts listening or exits: for readiness. */
  | { type: 'match-booking:cluster-state'; workersListening: number; workersWanted: number }
  /** Worker → primary: GET /metrics arrived here; send me the instance's metrics. */
  | { type: 'match-booking:metrics-request'; requestId: number }
  /** Primary → the asking worker: the metrics summed over all workers (Prometheus text), or why not. */
  | { type: 'match-booking:metrics-reply'; requestId: number; text?: string; error?: string }
  /** Primary → every listening worker: send me your registry. */
  | { type: 'match-booking:metrics-collect'; collectId: number }
  /** Worker → primary: its registry as prom-client's getMetricsAsJSON gives it. */
  | { type: 'match-booking:metrics-collected'; collectId: number; metrics: RegistryJson };

export type RegistryJson = Array<MetricObjectWithValues<MetricValue<string>>>;

export function isClusterMessage(message: unknown): message is ClusterMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    typeof (message as { type?: unknown }).type === 'string' &&
    (message as { type: string }).type.startsWith('match-booking:')
  );
}
