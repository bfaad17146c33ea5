import type { NextFunction, Request, Response } from 'express';
import type { Metrics } from './metrics';

/** Times every request; labelled by route template (never the raw path, whose ids would explode the label set). */
export function httpMetrics(metrics: Metrics) {
  return (request: Request, response: Response, next: NextFunction): void => {
    const stopTimer = metrics.httpRequestDuration.startTimer({ method: request.method });
    response.once('close', () => {
      const routePath = (request.route as { path?: unknown } | undefined)?.path;
      const route = typeof routePath === 'string' ? `${request.baseUrl}${routePath}` : 'unmatched';
      stopTimer({ route, status: String(response.statusCode) });
    });
    next();
  };
}
