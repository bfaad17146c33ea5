import type { FastifyReply } from 'fastify';
import { PROBLEM_TYPES, type ProblemExtensions, type ProblemType, type ProblemTypeName, problemTypeUri } from './problem-types';

/** RFC 9457 problem details; extension members sit beside the standard ones. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  instance?: string;
  [extension: string]: unknown;
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

/** A problem and the headers that go with it (Retry-After). */
export interface ProblemAnswer {
  problem: ProblemDetails;
  headers: Record<string, string>;
}

/** The answer of a problem type as problem-types.ts describes it; `detail` unless the type has a fixed one. */
export function problemAnswer<T extends ProblemTypeName>(type: T, detail: string, extensions: ProblemExtensions<T> = {}): ProblemAnswer {
  const spec: ProblemType = PROBLEM_TYPES[type];
  const retryAfterSeconds = (extensions as { retryAfterSeconds?: number }).retryAfterSeconds ?? spec.retryAfterSeconds;
  return {
    problem: {
      type: problemTypeUri(type),
      title: spec.title,
      status: spec.status,
      detail: spec.detail ?? detail,
      ...extensions,
      ...(retryAfterSeconds !== undefined && { retryAfterSeconds }),
    },
    headers: retryAfterSeconds === undefined ? {} : { 'Retry-After': String(retryAfterSeconds) },
  };
}

interface Description {
  type: ProblemTypeName;
  extensions?: (error: never) => Record<string, unknown>;
}

const descriptions = new Map<abstract new (...args: never[]) => Error, Description>();

/**
 * Names the problem type an error class is answered with, and how its extension members are
 * read from an instance. Subclasses inherit it unless they have their own.
 */
export function Problem<T extends ProblemTypeName, E extends Error>(type: T, extensions?: (error: E) => ProblemExtensions<T>) {
  return (target: abstract new (...args: never[]) => E): void => {
    descriptions.set(target, { type, ...(extensions && { extensions: extensions }) });
  };
}

function descriptionOf(error: unknown): Description | undefined {
  if (!(error instanceof Error)) return undefined;
  for (let type: unknown = error.constructor; typeof type === 'function'; type = Object.getPrototypeOf(type)) {
    const description = descriptions.get(type as abstract new (...args: never[]) => Error);
    if (description) return description;
  }
  return undefined;
}

/** The problem type of an error whose class (or a superclass) has @Problem. */
export function problemTypeOf(error: unknown): ProblemTypeName | undefined {
  return descriptionOf(error)?.type;
}

/** The answer to an error whose class (or a superclass) has @Problem; undefined for any other. */
export function answerFor(error: unknown): ProblemAnswer | undefined {
  const description = descriptionOf(error);
  if (!description) return undefined;
  const extensions = description.extensions?.(error as never) ?? {};
  return problemAnswer(description.type, (error as Error).message, extensions);
}

export function sendProblem(reply: FastifyReply, problem: ProblemDetails, headers: Record<string, string> = {}): void {
  reply.code(problem.status);
  for (const [name, value] of Object.entries(headers)) reply.header(name, value);
  reply.header('Content-Type', `${PROBLEM_CONTENT_TYPE}; charset=utf-8`);
  // A string with a content type is sent as it is.
  void reply.send(JSON.stringify(problem));
}
