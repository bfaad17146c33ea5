import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath, type OpenAPIObject } from '@nestjs/swagger';
import { PROBLEM_CONTENT_TYPE } from './problem';
import { ProblemResponse } from './problem.dto';

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input (validation-failed, malformed-json); the fields are named in errors[]',
  401: 'Missing, malformed, wrongly signed or expired bearer token',
  403: 'The token lacks the admin role',
  404: 'Not found (or not yours)',
  409: 'Conflict with the current state, or a request with the same Idempotency-Key still in progress (Retry-After)',
  410: 'The hold has expired (hold-expired); its slots went back to the match',
  413: 'Request body too large',
  422: 'The Idempotency-Key was already used with a different request (idempotency-key-reused)',
  415: 'Request body is not JSON',
  429: 'Too many writes from this customer or IP address (rate-limited); see Retry-After',
  503: 'Temporarily unavailable (lock-timeout, database-unavailable); see Retry-After. outcome-unknown: the write may have happened; retry with the same Idempotency-Key or look up the id it names',
};

/** Documents the problem+json answers a route can give. */
export function ApiProblems(...statuses: number[]): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ApiExtraModels(ProblemResponse),
    ...statuses.map((status) =>
      ApiResponse({
        status,
        description: DESCRIPTIONS[status] ?? 'Error',
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
        description: DESCRIPTIONS[429] ?? 'Error',
        content: { [PROBLEM_CONTENT_TYPE]: { schema: { $ref: getSchemaPath(ProblemResponse) } } },
      };
    }
  }
  return document;
}
