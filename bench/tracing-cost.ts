import type { Pool } from 'pg';
import { startOtlpReceiver } from '../test/support/otlp-receiver';
import type { BookingApi } from './api';
import { type CheckLog, checkDatabaseInvariants, checkNoServerErrors } from './checks';
import { cpuSeconds } from './cpu';
import { runLoad } from './load';
import { type BenchOptions, TRACING_SETTINGS } from './options';
import type { Progress } from './progress';
import { loadBase, randomOf, STEP, type StepCpu, stepCpu } from './scenarios';
import { type ServiceSettings, startService } from './service';
import { round } from './stats';

export interface TracingCostStep {
  label: string;
  /** OTEL_TRACES_SAMPLER_ARG of parentbased_traceidratio; null: tracing off (no OTLP endpoint). */
  sampling: number | null;
  connections: number;
  bookingsPerSecond: number;
  /** bookingsPerSecond / the same with tracing off. */
  relativeThroughput: number | null;
  p50Ms: number;
  p99Ms: number;
  cpu: StepCpu;
  /** What the sink received from the measured step to the service's exit: OTLP/HTTP exports (protobuf) and their bytes. */
  exports: number;
  exportedBytes: number;
}

export interface TracingCostContext {
  options: BenchOptions;
  api: BookingApi;
  db: Pool;
  progress: Progress;
  checks: CheckLog;
  /** The main service's settings (database, secret, log file); each step starts a service of its own with them. */
  service: ServiceSettings;
  spreadMatches: string[];
  /** Registers an undo step (stopping a service, the sink) for the end or an interruption. */
  addCleanup: (name: string, run: () => Promise<void>) => void;
}

/**
 * The throughput of the spread step with tracing off, and on at 100 % and 1 % sampling, spans
 * exported over OTLP/HTTP (http/protobuf, the default) to a sink on this machine that discards
 * them: the cost of the SDK, the instrumentations, the service's own spans and the export.
 */
export async function runTracingCost(ctx: TracingCostContext): Promise<TracingCostStep[]> {
  const { options } = ctx;
  const sink = await startOtlpReceiver({ discard: true });
  ctx.addCleanup('stop the OTLP sink', () => sink.close());
  const steps: TracingCostStep[] = [];
  for (const setting of TRACING_SETTINGS) {
    const label = STEP.tracing(setting.label);
    ctx.progress.step(label);
    const tracing: Record<string, string> =
      setting.sampling === null
        ? {}
        : { OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, OTEL_TRACES_SAMPLER: 'parentbased_traceidratio', OTEL_TRACES_SAMPLER_ARG: String(setting.sampling) };
    const service = await startService({ ...ctx.service, extraEnv: tracing }, process.env);
    ctx.addCleanup(`stop the service of "${label}"`, async () => {
      await service.stop();
    });
    try {
      const base = { ...loadBase({ baseUrl: service.baseUrl, api: ctx.api, options }), pickMatch: randomOf(ctx.spreadMatches) };
      await runLoad({ ...base, connections: options.warmupConnections, until: { seconds: options.warmupSeconds } });
      const exportsBefore = sink.exports.length;
      const cpuBefore = await cpuSeconds(service.pid, service.withWorkers);
      const result = await runLoad({ ...base, connections: options.tracingConnections, until: { seconds: options.stepSeconds } });
      const cpu = stepCpu(cpuBefore, await cpuSeconds(service.pid, service.withWorkers), [result]);
      // Stopped first: its shutdown exports the spans still buffered (at 1 %, maybe all of them).
      await service.stop();
      const exported = sink.exports.slice(exportsBefore);
      const off = steps.find((step) => step.sampling === null);
      steps.push({
        label,
        sampling: setting.sampling,
        connections: options.tracingConnections,
        bookingsPerSecond: result.bookingsPerSecond,
        relativeThroughput: off && off.bookingsPerSecond > 0 ? round(result.bookingsPerSecond / off.bookingsPerSecond, 3) : null,
        p50Ms: result.latency.p50Ms,
        p99Ms: result.latency.p99Ms,
        cpu,
        exports: exported.length,
        exportedBytes: exported.reduce((sum, received) => sum + received.bytes, 0),
      });
      ctx.checks.record([
        checkNoServerErrors(label, result.statusCounts),
        {
          scenario: label,
          name: setting.sampling === null ? 'no span exported with tracing off' : 'spans exported',
          passed: setting.sampling === null ? exported.length === 0 : exported.length > 0,
          detail: `${exported.length} OTLP export(s) received from the step to the service's exit`,
        },
        ...(await checkDatabaseInvariants(ctx.db, label)),
      ]);
    } finally {
      await service.stop();
    }
  }
  return steps;
}
