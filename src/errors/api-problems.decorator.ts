import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath, type OpenAPIObject } from '@nestjs/swagger';
import { PROBLEM_CONTENT_TYPE } from './problem';
import { PROBLEM_TYPES } from './problem-types';
import { ProblemResponse } from './problem.dto';

/** The statuses answered with about:blank (plain HTTP errors, no problem type of our own). */
const PLAIN_HTTP: Record<number, string> = {
  401: 'Missing or refused bearer token: malformed, wrongly signed, expired or not yet valid, another issuer or audience, an unknown key, an algorithm not accepted, no customer claim',
  403: 'The token lacks the admin role',
  404: 'Not found (or not yours)',
};

/** What a status means: its problem types from problem-types.ts. */
function describeStatus(status: number): string {
  const types = Object.entries(PROBLEM_TYPES)
    .filter(([, type]) => type.status === status)
    .map(([name, type]) => `${name}: ${type.when}`);
  return [PLAIN_HTTP[status], ...types].filter((part) => part !== undefined).join('; ') || 'Error';
}

/** Documents the problem+json answers a route can give. */
export function ApiProblems(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiExtraModels(ProblemResponse),
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: describeStatus(status),
        content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: getSchemaPath(ProblemResponse) } } },
      }),
    ),
  );
}

const WRITE_OPERATIONS = ['post', 'put', 'patch', 'delete'] as const;

/**
 * Documents 429 on every write operation under `prefix`, exactly the requests RateLimitGuard
 * counts; done on the finished document rather than per route, so a new write route cannot
 * be left undocumented.
 */
export function documentRateLimitedWrites(document: OpenAPIObject, prefix: string): OpenAPIObject {
  for (const [path, item] of Object.entries(document.paths)) {
    if (!path.startsWith(prefix)) continue;
    for (const method of WRITE_OPERATIONS) {
      const operation = item[method];
      if (!operation) continue;
      operation.responses['429'] = {
        description: describeStatus(429),
        content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: getSchemaPath(ProblemResponse) } } },
      };
    }
  }
  return document;
}
