import createETag from 'etag';
import type { FastifyInstance } from 'fastify';
import fresh from 'fresh';

/**
 * Weak ETags on the answers to GET and HEAD, and 304 Not Modified while If-None-Match still
 * matches, with Express's tags (W/"<length>-<sha1>"), so a client's cached tags stay valid.
 * Writes get none (Express tagged them too, at the cost of a SHA-1 of every booking's answer,
 * though nothing revalidates a write); problem answers never had one.
 */
export function useConditionalGet(fastify: FastifyInstance): void {
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const status = reply.statusCode;
    const read = request.method === 'GET' || request.method === 'HEAD';
    if (!read || status >= 400 || !(typeof payload === 'string' || Buffer.isBuffer(payload))) {
      done(null, payload);
      return;
    }
    let etag = reply.getHeader('etag');
    if (etag === undefined) {
      etag = createETag(payload, { weak: true });
      reply.header('etag', etag);
    }
    if (((status >= 200 && status < 300) || status === 304) && fresh(request.headers, { etag, 'last-modified': reply.getHeader('last-modified') })) {
      reply.code(304);
      reply.removeHeader('content-type');
      reply.removeHeader('content-length');
      done(null, '');
      return;
    }
    done(null, payload);
  });
}
