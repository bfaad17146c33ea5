import type { Response } from 'express';

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

/** Problem types are identified by relative URIs under /problems/ (listed in the README). */
export function problemTypeUri(slug: string): string {
  return `/problems/${slug}`;
}

export function sendProblem(response: Response, problem: ProblemDetails, headers: Record<string, string> = {}): void {
  response.status(problem.status);
  for (const [name, value] of Object.entries(headers)) response.setHeader(name, value);
  response.setHeader('Content-Type', `${PROBLEM_CONTENT_TYPE}; charset=utf-8`);
  response.end(JSON.stringify(problem));
}
