import createETag from 'etag';
import type { FastifyInstance } from 'fastify';
import fresh from 'fresh';

/**
 * Weak ETags on the answers the application sends, and 304 Not Modified for a GET or HEAD whose
 * If-None-Match still matches: what Express's res.send did, with its tags (W/"<length>-<sha1>"),
 * so a client's cached tags stay valid. Problem answers never had one.
 */
export function useConditionalGet(fastify: FastifyInstance): void {
  fastify.addHook('onSend', (request, reply, payload, done) => {
    const status = reply.statusCode;
    if (status >= 400 || !(typeof payload === 'string' || Buffer.isBuffer(payload))) {
      done(null, payload);
      return;
    }
    let etag = reply.getHeader('etag');
    if (etag === undefined) {
      etag = createETag(payload, { weak: true });
      reply.header('etag', etag);
    }
    const cacheable = request.method === 'GET' || request.method === 'HEAD';
    if (cacheable && ((status >= 200 && status < 300) || status === 304) && fresh(request.headers, { etag, 'last-modified': reply.getHeader('last-modified') })) {
      reply.code(304);
      reply.removeHeader('content-type');
      reply.removeHeader('content-length');
      done(null, '');
      return;
    }
    done(null, payload);
  });
}
