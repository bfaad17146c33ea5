import type { onRequestHookHandler } from 'fastify';
import { requestPath } from '../http/request-path';
import type { Metrics } from './metrics';

/**
 * Times every request; labelled by route template (never the raw path, whose ids would explode
 * the label set). A request no route takes is labelled by `unmatchedLabel` (as under Express, by
 * the not-found route that answered it, else "unmatched"); so are the catch-all routes of plugins
 * (CORS preflights, the API docs' assets), which were middleware under Express.
 */
export function httpMetrics(metrics: Metrics, unmatchedLabel: (path: string) => string): onRequestHookHandler {
  return (request, reply, done) => {
    const stopTimer = metrics.httpRequestDuration.startTimer({ method: request.method });
    reply.raw.once('close', () => {
      const template = request.is404 ? undefined : request.routeOptions.url;
      const route = template === undefined || template.includes('*') ? unmatchedLabel(requestPath(request)) : template;
      stopTimer({ route, status: String(reply.raw.statusCode) });
    });
    done();
  };
}
