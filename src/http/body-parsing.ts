import express, { type NextFunction, type Request, type RequestHandler, type Response } from 'express';
import { problemTypeUri, sendProblem } from '../errors/problem';

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
    sendProblem(response, {
      type: problemTypeUri('unsupported-media-type'),
      title: 'Unsupported Media Type',
      status: 415,
      detail: 'Send the request body as JSON with "Content-Type: application/json"',
      instance: request.originalUrl,
    });
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
    sendProblem(response, {
      type: problemTypeUri('validation-failed'),
      title: 'Invalid request',
      status: 400,
      detail: 'The request body must be a JSON object',
      instance: request.originalUrl,
      errors: [{ field: 'body', message: 'The request body must be a JSON object' }],
    });
    return;
  }
  const dropped = hasBody(request) ? DROPPED_KEYS.find((key) => Object.hasOwn(body as object, key)) : undefined;
  if (dropped !== undefined) {
    const message = `property ${dropped} should not exist`;
    sendProblem(response, {
      type: problemTypeUri('validation-failed'),
      title: 'Invalid request',
      status: 400,
      detail: message,
      instance: request.originalUrl,
      errors: [{ field: dropped, message }],
    });
    return;
  }
  next();
}

function bodyParserErrors(error: unknown, request: Request, response: Response, next: NextFunction): void {
  const type = (error as { type?: unknown } | null)?.type;
  if (type === 'entity.too.large') {
    sendProblem(response, {
      type: problemTypeUri('payload-too-large'),
      title: 'Payload Too Large',
      status: 413,
      detail: `The request body is larger than ${(error as { limit?: number }).limit ?? 'the limit of'} bytes`,
      instance: request.originalUrl,
    });
    return;
  }
  if (type === 'entity.parse.failed') {
    sendProblem(response, {
      type: problemTypeUri('malformed-json'),
      title: 'Malformed JSON',
      status: 400,
      detail: 'The request body is not valid JSON',
      instance: request.originalUrl,
      errors: [{ field: 'body', message: 'The request body is not valid JSON' }],
    });
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
