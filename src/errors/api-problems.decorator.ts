import { applyDecorators } from '@nestjs/common';
import { ApiExtraModels, ApiResponse, getSchemaPath } from '@nestjs/swagger';
import { PROBLEM_CONTENT_TYPE } from './problem';
import { ProblemResponse } from './problem.dto';

const DESCRIPTIONS: Record<number, string> = {
  400: 'Invalid input (validation-failed, malformed-json); the fields are named in errors[]',
  401: 'Missing, malformed, wrongly signed or expired bearer token',
  403: 'The token lacks the admin role',
  404: 'Not found (or not yours)',
  409: 'Conflict with the current state',
  410: 'The hold has expired (hold-expired); its slots went back to the match',
  413: 'Request body too large',
  415: 'Request body is not JSON',
  503: 'Temporarily unavailable (lock-timeout, database-unavailable); see Retry-After',
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
