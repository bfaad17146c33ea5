import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { problemAnswer, sendProblem } from '../errors/problem';
import type { ProblemExtensions, ProblemTypeName } from '../errors/problem-types';

/**
 * JSON body parsing with problem+json answers for what body-parser rejects. These errors
 * happen in Express middleware, before Nest's exception filters can see them.
 */
export function jsonBodyParsing(limitBytes: number): Array<RequestHandler | express.ErrorRequestHandler> {
  return [requireJsonContentType, express.json({ limit: limitBytes, strict: true }), requireJsonObject, bodyParserErrors];
}

function hasBody(request: Request): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function requireJsonContentType(request: Request, response: Response, next: NextFunction): void {
  if (hasBody(request) && !request.is('application/json')) {
    answer(request, response, 'unsupported-media-type', 'Send the request body as JSON with "Content-Type: application/json"');
    return;
  }
  next();
}

/**
 * Keys that Nest's ValidationPipe strips (a prototype-pollution guard) before it validates,
 * so "forbidNonWhitelisted" never sees them and they would be dropped silently; refused here.
 */
const DROPPED_KEYS = ['__proto__', 'constructor', 'prototype'];

function requireJsonObject(request: Request, response: Response, next: NextFunction): void {
  const body: unknown = request.body;
  if (hasBody(request) && (typeof body !== 'object' || body === null || Array.isArray(body))) {
    const message = 'The request body must be a JSON object';
    answer(request, response, 'validation-failed', message, { errors: [{ field: 'body', message }] });
    return;
  }
  const dropped = hasBody(request) ? DROPPED_KEYS.find((key) => Object.hasOwn(body as object, key)) : undefined;
  if (dropped !== undefined) {
    const message = `property ${dropped} should not exist`;
    answer(request, response, 'validation-failed', message, { errors: [{ field: dropped, message }] });
    return;
  }
  next();
}

function bodyParserErrors(error: unknown, request: Request, response: Response, next: NextFunction): void {
  const type = (error as { type?: unknown } | null)?.type;
  if (type === 'entity.too.large') {
    answer(request, response, 'payload-too-large', `The request body is larger than ${(error as { limit?: number }).limit ?? 'the limit of'} bytes`);
    return;
  }
  if (type === 'entity.parse.failed') {
    const message = 'The request body is not valid JSON';
    answer(request, response, 'malformed-json', message, { errors: [{ field: 'body', message }] });
    return;
  }
  if (typeof type === 'string' && (type.startsWith('encoding.') || type.startsWith('charset.') || type.startsWith('request.'))) {
    const status = (error as { status?: number }).status ?? 400;
    sendProblem(response, {
      type: 'about:blank',
      title: 'Bad Request',
      status,
      detail: (error as Error).message,
      instance: request.originalUrl,
    });
    return;
  }
  next(error);
}

function answer<T extends ProblemTypeName>(request: Request, response: Response, type: T, detail: string, extensions?: ProblemExtensions<T>): void {
  const { problem, headers } = problemAnswer(type, detail, extensions);
  sendProblem(response, { ...problem, instance: request.originalUrl }, headers);
}

/** Last handler: a path outside every route (Nest answers for paths under the API prefix itself). */
export function routeNotFound(request: Request, response: Response): void {
  sendProblem(response, {
    type: 'about:blank',
    title: 'Not Found',
    status: 404,
    detail: `Cannot ${request.method} ${request.path}`,
    instance: request.originalUrl,
  });
}
