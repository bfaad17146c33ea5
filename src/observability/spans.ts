import { type Attributes, type Span, SpanStatusCode, trace } from '@opentelemetry/api';
import { describeError } from '../errors/describe-error';

/**
 * The tracer of the service's own spans. Until tracing.ts registers the SDK (and always when
 * tracing is off) it is @opentelemetry/api's no-op tracer: its spans record nothing.
 */
export const tracer = trace.getTracer('match-booking');

/** Marks a span failed with the error, which the trace then shows as an exception event. */
export function failSpan(span: Span, error: unknown): void {
  span.recordException(error instanceof Error ? error : describeError(error));
  span.setStatus({ code: SpanStatusCode.ERROR, message: describeError(error) });
}

/** Runs `work` in a new active span (a child of the active one) that ends with it, failed if `work` throws. */
export async function inSpan<T>(name: string, attributes: Attributes, work: (span: Span) => Promise<T>): Promise<T> {
  return tracer.startActiveSpan(name, { attributes }, async (span) => {
    try {
      return await work(span);
    } catch (error) {
      failSpan(span, error);
      throw error;
    } finally {
      span.end();
    }
  });
}
