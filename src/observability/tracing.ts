/**
 * OpenTelemetry tracing, configured only by the standard OTEL_* environment variables. main.ts
 * imports this file before anything else: the http, pg and ioredis instrumentations patch those
 * modules when they are first loaded, so the SDK must be running by then. The HTTP server span
 * is named by its route template (http.route) through httpRouteHook below.
 *
 * Tracing is on when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set
 * (and neither OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none says otherwise). Otherwise
 * the SDK is not even loaded: the service's spans go to @opentelemetry/api's no-op tracer.
 * The SDK reads the rest itself: OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_PROTOCOL (http/protobuf by
 * default, or http/json), OTEL_TRACES_SAMPLER(_ARG), OTEL_BSP_*, OTEL_PROPAGATORS, ...
 * Only traces are exported; the service's metrics are Prometheus's (metrics.ts).
 */
import { context, diag, type DiagLogger, DiagLogLevel } from '@opentelemetry/api';
import type * as CoreModule from '@opentelemetry/core';
import type * as HttpModule from '@opentelemetry/instrumentation-http';
import type * as IORedisModule from '@opentelemetry/instrumentation-ioredis';
import type * as PgModule from '@opentelemetry/instrumentation-pg';
import type * as SdkNode from '@opentelemetry/sdk-node';
import pino from 'pino';
import { describeError } from '../errors/describe-error';
import { workerLogFields } from '../lifecycle/cluster-worker';

/** Paths never worth a trace: polled by machines every few seconds. */
const UNTRACED_PATHS = ['/health/', '/metrics'];

type Environment = Record<string, string | undefined>;

interface RunningTracing {
  sdk: SdkNode.NodeSDK;
  endpoint: string;
  getRPCMetadata: typeof CoreModule.getRPCMetadata;
}

let running: RunningTracing | undefined;

/** Whether the environment asks for tracing: an OTLP endpoint is set and the SDK is not switched off. */
export function tracingConfigured(env: Environment): boolean {
  const set = (name: string): boolean => (env[name] ?? '').trim() !== '';
  const endpoint = set('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') || set('OTEL_EXPORTER_OTLP_ENDPOINT');
  const disabled = env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' || env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none';
  return endpoint && !disabled;
}

/**
 * Starts the SDK when tracing is configured; does nothing otherwise. Synchronous, and loads the
 * SDK only then, so that an unconfigured service never pays for it.
 */
function startTracing(env: Environment): void {
  if (running || !tracingConfigured(env)) return;
  const log = pino({ base: { service: 'match-booking', ...workerLogFields(), context: 'Tracing' } }, pino.destination({ dest: 1, sync: true }));
  // The SDK reports export failures and bad settings through diag; without a logger they vanish.
  diag.setLogger(diagToPino(log), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });

  /* eslint-disable @typescript-eslint/no-require-imports -- loaded only when configured, and before the instrumented modules */
  const { NodeSDK } = require('@opentelemetry/sdk-node') as typeof SdkNode;
  const { HttpInstrumentation } = require('@opentelemetry/instrumentation-http') as typeof HttpModule;
  const { getRPCMetadata } = require('@opentelemetry/core') as typeof CoreModule;
  const { PgInstrumentation } = require('@opentelemetry/instrumentation-pg') as typeof PgModule;
  const { IORedisInstrumentation } = require('@opentelemetry/instrumentation-ioredis') as typeof IORedisModule;
  /* eslint-enable @typescript-eslint/no-require-imports */

  const sdk = new NodeSDK({
    // A name of our own only when the environment gives none (serviceName overrides the environment's).
    ...(serviceNamed(env) ? {} : { serviceName: 'match-booking' }),
    // Traces only: no OTLP metrics or logs, which the SDK would otherwise export by default.
    metricReaders: [],
    logRecordProcessors: [],
    instrumentations: [
      new HttpInstrumentation({
        ignoreIncomingRequestHook: (request) => UNTRACED_PATHS.some((path) => request.url?.startsWith(path) ?? false),
      }),
      // enhancedDatabaseReporting stays off: statement parameters are customer data.
      new PgInstrumentation({ requireParentSpan: true }),
      // The command's name only: its keys name customers and client addresses (rate-limit counters).
      new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: (command) => command }),
    ],
  });
  sdk.start();
  const endpoint = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || `${env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim()} (/v1/traces)`;
  running = { sdk, endpoint, getRPCMetadata };
  log.info(`Tracing on: spans go to ${endpoint} over ${env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL?.trim() || env.OTEL_EXPORTER_OTLP_PROTOCOL?.trim() || 'http/protobuf'}`);
}

/** What httpRouteHook needs of a Fastify request (this file loads before Fastify). */
interface RoutedRequest {
  is404: boolean;
  routeOptions: { url?: string };
}

/**
 * With tracing on, a request hook that hands the route template (e.g. /api/v1/matches/:id/bookings)
 * to the HTTP instrumentation, which sets http.route on the server span and names the span
 * "POST /api/v1/...". Undefined when tracing is off.
 */
export function httpRouteHook(): ((request: RoutedRequest, reply: unknown, done: () => void) => void) | undefined {
  const current = running;
  if (!current) return undefined;
  return (request, _reply, done) => {
    const url = request.is404 ? undefined : request.routeOptions.url;
    // The instrumentation runs the request in a context with this (mutable) record of the server span.
    const metadata = current.getRPCMetadata(context.active());
    if (metadata && url !== undefined) metadata.route = url;
    done();
  };
}

/**
 * Exports the spans still buffered and stops the SDK; a step of the graceful shutdown. Bounded:
 * an unreachable collector must not hold the exit up (the spans are then lost). Resolves to
 * false when it timed out; a no-op when tracing is off.
 */
export async function shutdownTracing(timeoutMs: number): Promise<boolean> {
  const current = running;
  if (!current) return true;
  running = undefined;
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([current.sdk.shutdown().then(() => true as const), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

function serviceNamed(env: Environment): boolean {
  const attributes = (env.OTEL_RESOURCE_ATTRIBUTES ?? '').split(',').map((pair) => pair.split('=')[0]?.trim());
  return (env.OTEL_SERVICE_NAME ?? '').trim() !== '' || attributes.includes('service.name');
}

function diagToPino(log: pino.Logger): DiagLogger {
  const write =
    (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') =>
    (message: string, ...args: unknown[]): void => {
      // pino serialises the details safely (circular objects included).
      if (args.length === 0) log[level](message);
      else log[level]({ detail: args.map((arg) => (arg instanceof Error ? describeError(arg) : arg)) }, message);
    };
  return { error: write('error'), warn: write('warn'), info: write('info'), debug: write('debug'), verbose: write('trace') };
}

startTracing(process.env);
