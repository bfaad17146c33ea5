import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** One span of an OTLP/JSON export, flattened: ids in hex, attributes as plain values. */
export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  scope: string;
  attributes: Record<string, AttributeValue>;
  links: Array<{ traceId: string; spanId: string }>;
  /** The resource's attributes (service.name, ...). */
  resource: Record<string, AttributeValue>;
}

export type AttributeValue = string | number | boolean | Array<string | number | boolean>;

export interface ReceivedExport {
  contentType: string;
  bytes: number;
}

export interface OtlpReceiver {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT: the exporter posts to <endpoint>/v1/traces. */
  endpoint: string;
  /** Every POST /v1/traces received. */
  exports: ReceivedExport[];
  /** The spans of the http/json exports received (none when the receiver discards them). */
  spans: ReceivedSpan[];
  /** Resolves once `predicate` holds for the spans received, or rejects after `timeoutMs`. */
  waitFor(predicate: (spans: ReceivedSpan[], exports: ReceivedExport[]) => boolean, timeoutMs?: number, what?: string): Promise<void>;
  close(): Promise<void>;
}

interface OtlpValue {
  stringValue?: string;
  intValue?: number | string;
  doubleValue?: number;
  boolValue?: boolean;
  arrayValue?: { values?: OtlpValue[] };
}
interface OtlpAttribute {
  key: string;
  value: OtlpValue;
}
interface OtlpJsonExport {
  resourceSpans?: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeSpans?: Array<{
      scope?: { name?: string };
      spans?: Array<{
        traceId: string;
        spanId: string;
        parentSpanId?: string;
        name: string;
        kind: number;
        attributes?: OtlpAttribute[];
        links?: Array<{ traceId: string; spanId: string }>;
      }>;
    }>;
  }>;
}

/**
 * A real OTLP/HTTP traces receiver on 127.0.0.1 (what a collector offers on port 4318): accepts
 * POST /v1/traces in http/json or http/protobuf and answers 200. It parses the JSON exports;
 * protobuf ones are only counted. With `discard: true` it only counts the exports (a sink for
 * the bench, where parsing every span would compete with the service for the CPU).
 */
export async function startOtlpReceiver(options: { discard?: boolean } = {}): Promise<OtlpReceiver> {
  const keep = options.discard !== true;
  const exports: ReceivedExport[] = [];
  const spans: ReceivedSpan[] = [];
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    request.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      if (keep) chunks.push(chunk);
    });
    request.on('end', () => {
      const contentType = request.headers['content-type'] ?? '';
      if (request.method !== 'POST' || request.url !== '/v1/traces') {
        response.writeHead(404).end();
        return;
      }
      exports.push({ contentType, bytes });
      if (keep && contentType.startsWith('application/json')) spans.push(...flatten(JSON.parse(Buffer.concat(chunks).toString('utf8')) as OtlpJsonExport));
      // An empty ExportTraceServiceResponse: full success, in the request's encoding.
      if (contentType.startsWith('application/json')) response.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      else response.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    exports,
    spans,
    async waitFor(predicate, timeoutMs = 15_000, what = 'the expected spans') {
      const deadline = Date.now() + timeoutMs;
      while (!predicate(spans, exports)) {
        if (Date.now() > deadline) {
          throw new Error(`The OTLP receiver did not get ${what} within ${timeoutMs} ms; it got: ${spans.map((span) => span.name).join(', ') || `${exports.length} export(s)`}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    },
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((error) => (error ? reject(error) : resolve()));
      }),
  };
}

function flatten(body: OtlpJsonExport): ReceivedSpan[] {
  return (body.resourceSpans ?? []).flatMap((resourceSpans) => {
    const resource = attributesOf(resourceSpans.resource?.attributes);
    return (resourceSpans.scopeSpans ?? []).flatMap((scopeSpans) =>
      (scopeSpans.spans ?? []).map((span) => ({
        traceId: span.traceId,
        spanId: span.spanId,
        parentSpanId: span.parentSpanId || undefined,
        name: span.name,
        kind: span.kind,
        scope: scopeSpans.scope?.name ?? '',
        attributes: attributesOf(span.attributes),
        links: (span.links ?? []).map((link) => ({ traceId: link.traceId, spanId: link.spanId })),
        resource,
      })),
    );
  });
}

function attributesOf(attributes: OtlpAttribute[] = []): Record<string, AttributeValue> {
  return Object.fromEntries(attributes.map(({ key, value }) => [key, value.arrayValue ? (value.arrayValue.values ?? []).map(scalarOf) : scalarOf(value)]));
}

function scalarOf(value: OtlpValue): string | number | boolean {
  return value.stringValue ?? (value.intValue === undefined ? undefined : Number(value.intValue)) ?? value.doubleValue ?? value.boolValue ?? '';
}
