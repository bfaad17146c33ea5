import bodyParser from 'body-parser';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage, ServerResponse } from 'node:http';
import typeIs from 'type-is';
import { problemAnswer, sendProblem, type ProblemAnswer } from '../errors/problem';
import type { ProblemExtensions, ProblemTypeName } from '../errors/problem-types';
import { requestPath } from './request-path';

/** Why the body was refused, set by the content-type parser and answered before any guard or handler runs. */
const REFUSED_BODY = Symbol('refusedBody');
/** Set once the body went through parseBody: Fastify skips parsing for some requests that do carry a body. */
const BODY_READ = Symbol('bodyRead');

interface RawRequestWithBody extends IncomingMessage {
  body?: unknown;
}

interface BodyRequest extends FastifyRequest {
  [REFUSED_BODY]?: ProblemAnswer;
  [BODY_READ]?: true;
}

/**
 * JSON body parsing with problem+json answers for what is refused: Fastify's own parsers are
 * replaced by one for every content type, which runs body-parser's JSON parser on the request
 * (its limits, charsets, content encodings and error types are those the API has always had).
 * A refused body is answered in preValidation, so before guards and handlers, like an unknown route.
 */
export function useJsonBodyParsing(fastify: FastifyInstance, limitBytes: number): void {
  const parseJson = bodyParser.json({ limit: limitBytes, strict: true });
  fastify.removeAllContentTypeParsers();
  // A parser for '*' gets the request stream itself: body-parser reads it (and enforces the limit).
  fastify.addContentTypeParser('*', (request, _payload, done) => {
    parseBody(request, parseJson, limitBytes, done);
  });
  fastify.addHook('preValidation', (request: BodyRequest, reply, done) => {
    // GET, HEAD, and OPTIONS or DELETE without a content type: Fastify does not parse their
    // bodies, which must be refused or read all the same.
    if (request[BODY_READ] === undefined && hasBody(request.raw)) {
      parseBody(request, parseJson, limitBytes, (error, body) => {
        if (error !== null) {
          done(error);
          return;
        }
        request.body = body;
        answerOrContinue(request, reply, done);
      });
      return;
    }
    answerOrContinue(request, reply, done);
  });
}

type BodyParser = (request: IncomingMessage, response: ServerResponse, next: (error?: unknown) => void) => void;

/** Calls back with an error only for what body-parser fails with unexpectedly (the exception filter answers it). */
function parseBody(request: BodyRequest, parseJson: BodyParser, limitBytes: number, done: (error: Error | null, body: unknown) => void): void {
  request[BODY_READ] = true;
  const raw = request.raw as RawRequestWithBody;
  const plainLength = plainJsonLength(raw, limitBytes);
  if (plainLength === undefined && hasBody(raw) && !typeIs(raw, ['application/json'])) {
    refuse(request, 'unsupported-media-type', 'Send the request body as JSON with "Content-Type: application/json"');
    done(null, undefined);
    return;
  }
  const settle = (error: unknown, body: unknown): void => {
    if (error === undefined) requireJsonObject(request, body);
    else if (!refuseUnparsed(request, error)) {
      done(error instanceof Error ? error : new Error('Reading the request body failed', { cause: error }), undefined);
      return;
    }
    done(null, body);
  };
  if (plainLength !== undefined) readPlainJson(raw, plainLength, settle);
  // body-parser reads nothing of the response.
  else parseJson(raw, undefined as unknown as ServerResponse, (error?: unknown) => settle(error, raw.body));
}

/**
 * The Content-Length of a body that needs none of body-parser's machinery (media type and charset
 * parsing, decompression, decoding), which cost more than the rest of a booking's request
 * parsing: "Content-Type: application/json" alone or with "charset=utf-8", no Content-Encoding,
 * and a Content-Length above 0 and within the limit. Undefined for any other body, which
 * body-parser reads.
 */
function plainJsonLength(request: IncomingMessage, limitBytes: number): number | undefined {
  const { headers } = request;
  if (headers['content-encoding'] !== undefined || headers['content-length'] === undefined) return undefined;
  const type = headers['content-type']?.toLowerCase();
  if (type !== 'application/json' && type !== 'application/json; charset=utf-8') return undefined;
  // Node's HTTP parser has already refused a Content-Length that is not a number.
  const length = Number(headers['content-length']);
  return length > 0 && length <= limitBytes ? length : undefined;
}

/**
 * Reads and parses a plain JSON body as body-parser's strict JSON parser would: a UTF-8 byte
 * order mark is dropped, a body that does not start with { or [ is not JSON, and the errors
 * carry the `type` (and `status`) that refuseUnparsed answers, body-parser's own types.
 */
function readPlainJson(request: IncomingMessage, length: number, done: (error: unknown, body: unknown) => void): void {
  const chunks: Buffer[] = [];
  let received = 0;
  let settled = false;
  const finish = (error: unknown, body?: unknown): void => {
    if (settled) return;
    settled = true;
    request.off('data', onData).off('end', onEnd).off('close', onClose).off('error', onError);
    done(error, body);
  };
  const onData = (chunk: Buffer): void => {
    chunks.push(chunk);
    received += chunk.length;
  };
  const onEnd = (): void => {
    if (received !== length) {
      finish(bodyReadError('request size did not match content length', 'request.size.invalid'));
      return;
    }
    let text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, received)).toString('utf8');
    if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    // body-parser takes an empty body for an empty object.
    if (text.length === 0) {
      finish(undefined, {});
      return;
    }
    const first = firstNonWhitespace(text);
    if (first !== '{' && first !== '[') {
      finish(bodyReadError('The request body does not start with { or [', 'entity.parse.failed'));
      return;
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      finish(Object.assign(bodyReadError('The request body is not valid JSON', 'entity.parse.failed'), { cause: error }));
      return;
    }
    finish(undefined, body);
  };
  // The client went away before the end of its body.
  const onClose = (): void => {
    if (!request.complete) finish(bodyReadError('request aborted', 'request.aborted'));
  };
  const onError = (error: unknown): void => finish(Object.assign(bodyReadError('request aborted', 'request.aborted'), { cause: error }));
  request.on('data', onData).on('end', onEnd).on('close', onClose).on('error', onError);
}

/** JSON's whitespace only: space, tab, line feed, carriage return. */
function firstNonWhitespace(text: string): string | undefined {
  for (const char of text) if (char !== ' ' && char !== '\t' && char !== '\n' && char !== '\r') return char;
  return undefined;
}

function bodyReadError(message: string, type: string): Error & { type: string; status: number } {
  return Object.assign(new Error(message), { type, status: 400 });
}

function hasBody(request: IncomingMessage): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Keys that Nest's ValidationPipe strips (a prototype-pollution guard) before it validates,
 * so "forbidNonWhitelisted" never sees them and they would be dropped silently; refused here.
 */
const DROPPED_KEYS = ['__proto__', 'constructor', 'prototype'];

function requireJsonObject(request: BodyRequest, body: unknown): void {
  if (!hasBody(request.raw)) return;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    const message = 'The request body must be a JSON object';
    refuse(request, 'validation-failed', message, { errors: [{ field: 'body', message }] });
    return;
  }
  const dropped = DROPPED_KEYS.find((key) => Object.hasOwn(body, key));
  if (dropped !== undefined) {
    const message = `property ${dropped} should not exist`;
    refuse(request, 'validation-failed', message, { errors: [{ field: dropped, message }] });
  }
}

/** body-parser's errors, by their type; false for any other error. */
function refuseUnparsed(request: BodyRequest, error: unknown): boolean {
  const type = (error as { type?: unknown } | null)?.type;
  if (type === 'entity.too.large') {
    refuse(request, 'payload-too-large', `The request body is larger than ${(error as { limit?: number }).limit ?? 'the limit of'} bytes`);
    return true;
  }
  if (type === 'entity.parse.failed') {
    const message = 'The request body is not valid JSON';
    refuse(request, 'malformed-json', message, { errors: [{ field: 'body', message }] });
    return true;
  }
  if (typeof type === 'string' && (type.startsWith('encoding.') || type.startsWith('charset.') || type.startsWith('request.'))) {
    const status = (error as { status?: number }).status ?? 400;
    request[REFUSED_BODY] = { problem: { type: 'about:blank', title: 'Bad Request', status, detail: (error as Error).message }, headers: {} };
    return true;
  }
  return false;
}

function refuse<T extends ProblemTypeName>(request: BodyRequest, type: T, detail: string, extensions?: ProblemExtensions<T>): void {
  request[REFUSED_BODY] = problemAnswer(type, detail, extensions);
}

function answerOrContinue(request: BodyRequest, reply: FastifyReply, done: () => void): void {
  const refused = request[REFUSED_BODY];
  if (refused === undefined) {
    done();
    return;
  }
  sendProblem(reply, { ...refused.problem, instance: request.originalUrl }, refused.headers);
}

/**
 * A path outside every route that Nest does not answer itself (it answers for paths under the
 * API prefix and for the excluded routes' own paths): its 404 names the path without the query.
 */
export function answerNotFoundOutside(fastify: FastifyInstance, nestPaths: (path: string) => boolean): void {
  fastify.addHook('preHandler', (request, reply, done) => {
    const path = requestPath(request);
    if (!request.is404 || nestPaths(path)) {
      done();
      return;
    }
    sendProblem(reply, {
      type: 'about:blank',
      title: 'Not Found',
      status: 404,
      detail: `Cannot ${request.method} ${path}`,
      instance: request.originalUrl,
    });
  });
}
