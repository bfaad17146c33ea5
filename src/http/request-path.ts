import type { FastifyRequest } from 'fastify';

/** The path of the request target without its query (what Express called request.path). */
export function requestPath(request: Pick<FastifyRequest, 'url'>): string {
  const url = request.url;
  const end = url.search(/[?#]/);
  return end === -1 ? url : url.slice(0, end);
}
